import FoundationEssentials
import SandboxSupport

/// Seccomp filters for sandboxes: the default profile (`profiles/default.json`,
/// embedded at build time) or a profile file, compiled once and cached on disk
/// under the state directory (`cache/seccomp`).
public enum DefaultSeccomp {
    static let embeddedProfile = PackageResources.default_seccomp_json

    /// The default profile's filter. Strict: the profile ships with dgrid, so
    /// an unknown syscall name in it is a bug to surface, not a warning.
    public static func filter(state: StateDirectory = .forThisUser()) throws(SeccompError) -> SeccompFilter {
        try compile(bytes: embeddedProfile, origin: "profiles/default.json (embedded)", strict: true, state: state).filter
    }

    /// A user's profile file (OCI/Docker format); warnings are unknown syscall names.
    public static func filter(profilePath: String, state: StateDirectory = .forThisUser())
        throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) {
        let bytes = try SeccompProfile.readProfileFile(path: profilePath)
        return try compile(bytes: bytes, origin: profilePath, strict: false, state: state)
    }

    private static func compile(bytes: [UInt8], origin: String, strict: Bool, state: StateDirectory)
        throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) {
        let build = { () throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) in
            try SeccompCache.shared.compiled(bytes: bytes, path: origin, strict: strict)
        }
        // No usable state directory (rootless with no HOME, read-only disk): just compile.
        guard let directory = try? state.directory("cache/seccomp") else { return try build() }
        return try SeccompDiskCache(directory: directory).filter(profileBytes: bytes, strict: strict, compile: build)
    }
}
