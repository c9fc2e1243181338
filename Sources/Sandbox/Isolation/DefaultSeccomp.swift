/// The default profile, compiled once per process. (Wired to the compiler when it lands.)
public enum DefaultSeccomp {
    public static func filter() throws -> SeccompFilter? { nil }
}
