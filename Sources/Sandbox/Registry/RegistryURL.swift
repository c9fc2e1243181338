import SandboxImages
import SandboxSupport

/// Just enough of a URL for redirects and token realms: scheme, authority
/// (`host[:port]`, lowercased, default port dropped) and the rest. Refuses
/// anything but http(s) and any user-info (`user:pass@host`): credentials
/// never travel in URLs.
struct RegistryURL: Sendable, Equatable, CustomStringConvertible {
    let scheme: String
    let authority: String
    /// Path and query, starting with `/` (may be just `/`).
    let rest: String

    init?(_ text: String) {
        guard let schemeEnd = text.firstRange(of: "://") else { return nil }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let afterScheme = text[schemeEnd.upperBound...]
        let slash = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        var authority = afterScheme[..<slash].lowercased()
        guard !authority.isEmpty, !authority.contains("@"),
              authority.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else { return nil }
        if scheme == "https", authority.hasSuffix(":443") { authority.removeLast(4) }
        if scheme == "http", authority.hasSuffix(":80") { authority.removeLast(3) }
        var rest = String(afterScheme[slash...])
        if let hash = rest.firstIndex(of: "#") { rest = String(rest[..<hash]) }
        if rest.isEmpty || rest.hasPrefix("?") { rest = "/" + rest }
        guard rest.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else { return nil }
        self.scheme = scheme
        self.authority = authority
        self.rest = rest
    }

    var origin: String { "\(scheme)://\(authority)" }
    var description: String { origin + rest }

    /// `location` (absolute, scheme-relative, or a path) against this URL.
    func resolve(_ location: String) -> RegistryURL? {
        if location.hasPrefix("//") { return RegistryURL("\(scheme):\(location)") }
        if location.hasPrefix("/") { return RegistryURL(origin + location) }
        if location.contains("://") { return RegistryURL(location) }
        let pathOnly = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "/"
        let directory = pathOnly.hasSuffix("/") ? pathOnly : String(pathOnly[...(pathOnly.lastIndex(of: "/") ?? pathOnly.startIndex)])
        return RegistryURL(origin + directory + location)
    }

    /// This URL with `parameters` appended to the query, percent-encoded.
    func appendingQuery(_ parameters: [(String, String)]) -> RegistryURL? {
        guard !parameters.isEmpty else { return self }
        let query = parameters.map { "\(Self.percentEncode($0.0))=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        return RegistryURL(description + (rest.contains("?") ? "&" : "?") + query)
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF")
                out += "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xf)])
            }
        }
        return out
    }
}
