import Sandbox

/// Where webhook events are POSTed (docs/ARCHITECTURE.md §12): `http://` or
/// `https://`, a host (a name, an IPv4 address or a bracketed IPv6 one), an
/// optional port, a path and query of printable ASCII. No user-info (a secret
/// in a URL ends up in logs and process listings), no fragment. It comes from
/// the host's own configuration only — never from the grid (docs/THREATS.md).
public struct WebhookURL: Sendable, Equatable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case http, https }

    public let scheme: Scheme
    public let host: String
    public let port: UInt16?
    /// The path and query, starting with "/".
    public let target: String

    static let maxLength = 2_048

    public init(parsing text: String) throws(WebhookURLError) {
        func refuse(_ problem: String) -> WebhookURLError { WebhookURLError(text: text, problem: problem) }
        guard text.utf8.count <= Self.maxLength else { throw refuse("longer than \(Self.maxLength) bytes") }
        guard text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else { throw refuse("spaces or characters outside printable ASCII") }
        guard let schemeEnd = text.range(of: "://") else { throw refuse("no scheme: write http://HOST[:PORT]/PATH or https://…") }
        guard let scheme = Scheme(rawValue: String(text[..<schemeEnd.lowerBound]).lowercased()) else {
            throw refuse("the scheme must be http or https")
        }
        let rest = text[schemeEnd.upperBound...]
        guard !rest.contains("#") else { throw refuse("a fragment (#…) has no meaning here") }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let target = rest.dropFirst(authority.count)
        guard !authority.contains("@") else { throw refuse("user-info in the URL: put no credentials in it (events are signed with the secret instead)") }
        var host = Substring(authority), port: UInt16?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw refuse("an IPv6 host is written [ADDRESS]") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = UInt16(after.dropFirst()), number > 0 else { throw refuse("the port must be a number in 1...65535") }
                port = number
            }
            guard host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), host.contains(":") else { throw refuse("not an IPv6 address in brackets") }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                guard let number = UInt16(authority[authority.index(after: colon)...]), number > 0 else { throw refuse("the port must be a number in 1...65535") }
                port = number
                host = authority[..<colon]
            }
            let labels = host.split(separator: ".", omittingEmptySubsequences: false)
            guard !host.isEmpty, host.count <= 253, labels.allSatisfy({ label in
                !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }) else { throw refuse("the host must be a DNS name or an IP address") }
        }
        self.scheme = scheme
        self.host = host.lowercased()
        self.port = port
        self.target = target.isEmpty ? "/" : (target.hasPrefix("/") ? String(target) : "/" + target)
    }

    /// `scheme://host[:port]` only, for logs: some receivers (Slack's, for one) put their token in the path.
    public var origin: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(scheme.rawValue)://\(shownHost)\(port.map { ":\($0)" } ?? "")"
    }

    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(scheme.rawValue)://\(shownHost)\(port.map { ":\($0)" } ?? "")\(target)"
    }
}

public struct WebhookURLError: Error, Equatable, Sendable, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String { "\(UntrustedText.quoted(Self.withoutUserInfo(text), limit: 120)) is not a webhook URL: \(problem)" }

    /// A password in a refused URL stays out of the error (and so out of logs): `scheme://***@host…`.
    static func withoutUserInfo(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else { return text }
        let rest = text[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@") else { return text }
        return String(text[..<schemeEnd.upperBound]) + "***" + String(text[at...])
    }
}
