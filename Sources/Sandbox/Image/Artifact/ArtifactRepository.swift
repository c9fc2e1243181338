import SandboxSupport

/// A registry repository that keeps task artifacts (docs/ARCHITECTURE.md §10):
/// `HOST[:PORT]/PATH`, e.g. `127.0.0.1:5000/grid/artifacts`. The host must be
/// named (a `.` or `:` in it, or `localhost`): a bare `grid/artifacts` would
/// silently mean Docker Hub. Parsed once, here, for the worker's setting and for
/// every location a result record names — records are anyone's to push
/// (docs/THREATS.md, T19), so two spellings of one repository compare equal
/// (the host is lowercased) and nothing else gets through.
public struct ArtifactRepository: Hashable, Sendable, CustomStringConvertible {
    /// `host[:port]`, lowercase: the key for credentials and `insecure-registries`.
    public let registry: String
    /// The repository on it (`grid/artifacts`).
    public let path: String

    public init(parsing text: String) throws(ArtifactLocationError) {
        guard !text.isEmpty, text.utf8.count <= 255 else { throw .invalid(text, "empty or longer than 255 bytes") }
        guard let slash = text.firstIndex(of: "/") else {
            throw .invalid(text, "no repository after the registry host; write HOST[:PORT]/PATH, e.g. 127.0.0.1:5000/grid/artifacts")
        }
        let host = text[..<slash].lowercased()
        let path = String(text[text.index(after: slash)...])
        guard RegistryLocation.isRegistryHost(Substring(host)), ImageReference.isValidHost(Substring(host)) else {
            throw .invalid(text, "'\(UntrustedText.shown(host, limit: 80))' is not a registry host (a name with '.' or ':port', an IPv4 address, or localhost)")
        }
        guard !path.isEmpty, ImageReference.isValidRepository(path), !RegistryLocation.namesRegistry(path) else {
            throw .invalid(text, "the repository must be lowercase components of a-z 0-9 with '.', '_', '-' inside, joined by '/'")
        }
        registry = host
        self.path = path
    }

    public var description: String { "\(registry)/\(path)" }

    /// Where the registry client connects (`RegistryLocation`), plain HTTP only when `insecure`.
    public func location(insecure: Bool) -> RegistryLocation {
        RegistryLocation(repository: description, insecure: insecure)
    }
}

/// Where one task's registry artifacts are: the OCI artifact's manifest, by
/// digest, in its repository — `HOST[:PORT]/PATH@sha256:<hex>`, the `location`
/// of an artifact whose `store` is `registry`. The file itself is the layer
/// whose digest is the artifact's own.
public struct ArtifactManifestLocation: Hashable, Sendable, CustomStringConvertible {
    public let repository: ArtifactRepository
    public let manifest: Digest

    public init(repository: ArtifactRepository, manifest: Digest) {
        self.repository = repository
        self.manifest = manifest
    }

    public init(parsing text: String) throws(ArtifactLocationError) {
        guard text.utf8.count <= 255 + 72, let at = text.firstIndex(of: "@") else {
            throw .invalid(text, "not HOST[:PORT]/PATH@sha256:<64 hex digits>")
        }
        repository = try ArtifactRepository(parsing: String(text[..<at]))
        do {
            manifest = try Digest(parsing: String(text[text.index(after: at)...]))
        } catch {
            throw .invalid(text, error.description)
        }
    }

    public var description: String { "\(repository)@\(manifest)" }
}

/// A registry artifact's location that cannot be used, and why (one line; the
/// text was not dgrid's, so it is shown quoted and cut).
public enum ArtifactLocationError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalid(String, String)

    public var description: String {
        switch self {
        case .invalid(let text, let reason): "\(UntrustedText.quoted(text, limit: 200)) is not a registry artifact location: \(reason)"
        }
    }
}
