import SandboxImages
import SandboxSupport

/// The distribution API's URLs for a repository.
extension RegistryLocation {
    var base: String { "\(scheme)://\(endpoint)" }

    func manifestURL(_ reference: String) -> String { "\(base)/v2/\(repository)/manifests/\(reference)" }

    func blobURL(_ digest: Digest) -> String { "\(base)/v2/\(repository)/blobs/\(digest)" }

    /// The token scope for pulling from this repository.
    var pullScope: String { "repository:\(repository):pull" }

    /// The token scope for pushing to it (a push reads too: HEAD before each blob).
    var pushScope: String { "repository:\(repository):pull,push" }

    /// Where a blob upload starts (POST).
    var uploadURL: String { "\(base)/v2/\(repository)/blobs/uploads/" }
}

/// A parsed `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`
/// or `Basic realm="…"`.
struct AuthChallenge: Sendable, Equatable {
    var scheme: String
    var parameters: [String: String]

    var realm: String? { parameters["realm"] }

    /// Parses the first challenge in `header` (RFC 7235 auth-params; quoted
    /// strings with backslash escapes). nil when it is not one.
    static func parse(_ header: String) -> AuthChallenge? {
        var chars = Array(header.utf8)[...]
        func skipSpaces() { while let c = chars.first, c == 0x20 || c == 0x09 { chars = chars.dropFirst() } }
        func token() -> String {
            var out: [UInt8] = []
            while let c = chars.first, c != 0x20, c != 0x09, c != UInt8(ascii: "="), c != UInt8(ascii: ",") {
                out.append(c)
                chars = chars.dropFirst()
            }
            return String(decoding: out, as: UTF8.self)
        }
        skipSpaces()
        let scheme = token()
        guard !scheme.isEmpty else { return nil }
        var parameters: [String: String] = [:]
        while true {
            skipSpaces()
            while chars.first == UInt8(ascii: ",") { chars = chars.dropFirst(); skipSpaces() }
            guard !chars.isEmpty else { break }
            let name = token().lowercased()
            skipSpaces()
            // No '=': the next challenge starts (only the first is read).
            guard chars.first == UInt8(ascii: "="), !name.isEmpty else { break }
            chars = chars.dropFirst()
            skipSpaces()
            var value: [UInt8] = []
            if chars.first == UInt8(ascii: "\"") {
                chars = chars.dropFirst()
                var closed = false
                while let c = chars.first {
                    chars = chars.dropFirst()
                    if c == UInt8(ascii: "\\"), let next = chars.first {
                        value.append(next)
                        chars = chars.dropFirst()
                    } else if c == UInt8(ascii: "\"") {
                        closed = true
                        break
                    } else {
                        value.append(c)
                    }
                }
                guard closed else { return nil }
            } else {
                while let c = chars.first, c != UInt8(ascii: ","), c != 0x20, c != 0x09 {
                    value.append(c)
                    chars = chars.dropFirst()
                }
            }
            if parameters[name] == nil { parameters[name] = String(decoding: value, as: UTF8.self) }
        }
        return AuthChallenge(scheme: scheme.lowercased(), parameters: parameters)
    }
}
