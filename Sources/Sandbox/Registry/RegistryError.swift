import SandboxImages
import SandboxSupport

/// Why talking to a registry failed. One line each, naming the registry host
/// (never a URL with credentials, never a credential: the client redacts every
/// secret it holds from text a registry sent before it lands here). Content
/// errors (wrong digest, too long, truncated) stay `ImageError`s and arrive as
/// `.image`.
public enum RegistryError: Error, Equatable, CustomStringConvertible {
    /// The store refused content (digest, size), or a document was invalid.
    case image(ImageError)
    /// `pull` was given a tag: tasks run images by digest only.
    case tagNotAllowed(reference: String)
    /// The registry configuration file (credentials, insecure registries) is unusable.
    case config(path: String, reason: String)
    /// TLS with the registry failed (certificate, or a plain-HTTP registry).
    case tls(host: String, message: String)
    /// Connecting, or the connection itself, failed after the retries.
    case connection(host: String, message: String)
    /// The registry answered with an unexpected status.
    case http(host: String, what: String, status: Int, detail: String)
    /// 401/403 after authenticating (or with no credentials to offer).
    case unauthorized(host: String, what: String, status: Int, detail: String, credentialsFrom: String?)
    /// A `WWW-Authenticate` challenge or token answer dgrid refuses.
    case authentication(host: String, reason: String)
    /// A redirect dgrid refuses (bad Location, too many, https → http).
    case redirect(host: String, reason: String)
    /// The `Docker-Content-Digest` header disagrees with the body dgrid hashed.
    case digestHeaderMismatch(host: String, reference: String, header: String, computed: Digest)
    /// A blob or document did not arrive in time (a slow drip).
    case deadline(host: String, what: String, seconds: Int)

    public var description: String {
        switch self {
        case .image(let error):
            return error.description
        case .tagNotAllowed(let reference):
            return "'\(UntrustedText.shown(reference))' has no digest: tasks run images by digest only; pin a tag with `dgrid image allow NAME:TAG` and pull NAME@sha256:…"
        case .config(let path, let reason):
            return "registry configuration \(path): \(reason)"
        case .tls(let host, let message):
            return "registry \(host): TLS failed (\(message)); if the registry speaks plain HTTP, use --insecure or list it under insecure-registries in the registry configuration"
        case .connection(let host, let message):
            return "registry \(host): \(message)"
        case .http(let host, let what, let status, let detail):
            return "registry \(host): \(what): HTTP \(status)\(detail.isEmpty ? "" : " (\(detail))")"
        case .unauthorized(let host, let what, let status, let detail, let from):
            let hint = from.map { "the credentials from \($0) were refused" }
                ?? "no credentials for \(host); add them to the registry configuration (--registry-config)"
            return "registry \(host): \(what): HTTP \(status) unauthorized\(detail.isEmpty ? "" : " (\(detail))"); \(hint)"
        case .authentication(let host, let reason):
            return "registry \(host): authentication refused: \(reason)"
        case .redirect(let host, let reason):
            return "registry \(host): redirect refused: \(reason)"
        case .digestHeaderMismatch(let host, let reference, let header, let computed):
            return "registry \(host): \(UntrustedText.shown(reference)): Docker-Content-Digest says \(UntrustedText.shown(header, limit: 80)) but the manifest hashes to \(computed); refused"
        case .deadline(let host, let what, let seconds):
            return "registry \(host): \(what) did not arrive within \(seconds) s; refused"
        }
    }
}
