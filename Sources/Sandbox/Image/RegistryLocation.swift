import SandboxSupport
/// Where a repository lives: the registry host as written in the name
/// (`registry.example:5000`), the host dgrid connects to, and the repository
/// path on it. Every part comes from a parsed `ImageReference`, so it is
/// already restricted to characters that are safe in a URL path.
public struct RegistryLocation: Sendable, Hashable {
    /// The registry as named (`127.0.0.1:5000`, `docker.io`): the key for
    /// credentials and `insecure-registries`.
    public let registry: String
    /// `host[:port]` dgrid connects to (`registry-1.docker.io` for docker.io).
    public let endpoint: String
    /// The repository on that registry (`library/busybox`).
    public let repository: String
    /// `http` only when the registry is insecure (plain HTTP allowed).
    public let scheme: String

    public var isSecure: Bool { scheme == "https" }

    /// `repository` as in an `ImageReference`: a first component with `.` or
    /// `:`, or `localhost`, is the registry; without one the registry is
    /// Docker Hub, where one-component names live under `library/`.
    public init(repository: String, insecure: Bool) {
        let components = repository.split(separator: "/", omittingEmptySubsequences: false)
        if components.count > 1, let first = components.first, Self.isRegistryHost(first) {
            registry = String(first)
            self.repository = components.dropFirst().joined(separator: "/")
        } else {
            registry = "docker.io"
            self.repository = components.count == 1 ? "library/\(repository)" : repository
        }
        endpoint = registry == "docker.io" ? "registry-1.docker.io" : registry
        scheme = insecure ? "http" : "https"
    }

    /// Whether `repository` names its registry explicitly.
    public static func namesRegistry(_ repository: String) -> Bool {
        let components = repository.split(separator: "/", omittingEmptySubsequences: false)
        guard components.count > 1, let first = components.first else { return false }
        return isRegistryHost(first)
    }

    static func isRegistryHost(_ component: Substring) -> Bool {
        component.contains(".") || component.contains(":") || component == "localhost"
    }
}
