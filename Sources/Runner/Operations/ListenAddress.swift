import Glibc
import Sandbox

/// Where the worker's metrics listener binds (docs/ARCHITECTURE.md §12):
/// `IPv4:PORT` or `[IPv6]:PORT`, literals only — a name would need a resolver
/// at start, and "localhost" can resolve to an address nobody meant to expose.
/// Parsed once, at the edge (`metrics_listen`, `--metrics-listen`).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Family: Sendable, Equatable { case ipv4, ipv6 }

    public let host: String
    public let port: UInt16
    public let family: Family

    /// The default the docs suggest: loopback only (docs/THREATS.md: the listener's exposure).
    public static let suggested = "127.0.0.1:9464"

    public init(parsing text: String) throws(ListenAddressError) {
        let host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ListenAddressError(text: text, problem: "an IPv6 address is written [ADDRESS]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            family = .ipv6
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ListenAddressError(text: text, problem: "no port: write HOST:PORT, e.g. \(Self.suggested)")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            family = .ipv4
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber),
              let port = UInt16(portText), port > 0 else {
            throw ListenAddressError(text: text, problem: "the port must be a number in 1...65535")
        }
        guard Self.isLiteral(String(host), family: family) else {
            throw ListenAddressError(text: text, problem: family == .ipv4 ? "the host must be an IPv4 address such as 127.0.0.1 (names are not resolved)"
                                                                          : "the host must be an IPv6 address such as [::1]")
        }
        self.host = String(host)
        self.port = port
    }

    public var description: String { family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Bound to a loopback address: reachable from this host only.
    public var isLoopback: Bool {
        family == .ipv4 ? host.hasPrefix("127.") : host == "::1"
    }

    private static func isLiteral(_ host: String, family: Family) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(family == .ipv4 ? AF_INET : AF_INET6, host, &buffer) == 1
    }
}

public struct ListenAddressError: Error, Equatable, Sendable, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String { "\(UntrustedText.quoted(text, limit: 80)) is not a listen address: \(problem)" }
}
