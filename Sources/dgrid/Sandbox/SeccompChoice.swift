import Sandbox

/// Turns `--seccomp` into a compiled filter: the default profile, a file, or none.
enum SeccompChoice {
    static func filter(for option: String?) throws -> SeccompFilter? {
        if option == "unconfined" { return nil }
        // Filled in once the compiler lands.
        return nil
    }
}
