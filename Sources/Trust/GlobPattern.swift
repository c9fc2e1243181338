/// Shell-style `*` and `?` patterns, as `allowed_signers` principals use
/// them, for names the host's policy lists (images, principals).
public enum GlobPattern {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        SSHPattern.matches(Array(pattern.utf8), Array(text.utf8))
    }
}
