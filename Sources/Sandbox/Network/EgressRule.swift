import SandboxSupport
import Synchronization

/// One destination a sandbox may reach (docs/ARCHITECTURE.md §9): an IPv4 address
/// or CIDR block, a port (or every port) and a protocol. Written
/// `ADDRESS[/PREFIX]:PORT/PROTO`, e.g. `10.77.1.2:8080/tcp`, `10.77.0.0/24:*/udp`.
/// Addresses only: a name would be resolved by the worker, at a time and by a
/// resolver the policy does not control.
public struct EgressRule: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum TransportProtocol: String, Sendable { case tcp, udp }

    /// Network address, host byte order, with `prefix` leading bits significant.
    public let address: UInt32
    public let prefix: Int
    /// nil: every port.
    public let port: UInt16?
    public let proto: TransportProtocol

    public init(address: UInt32, prefix: Int, port: UInt16?, proto: TransportProtocol) {
        self.address = prefix == 0 ? 0 : address & (UInt32.max << (32 - prefix))
        self.prefix = prefix
        self.port = port
        self.proto = proto
    }

    /// Parses `ADDRESS[/PREFIX]:PORT/PROTO`; the error says what is wrong and how to write it.
    public init(parsing text: String) throws(EgressRuleError) {
        let example = "write ADDRESS[/PREFIX]:PORT/PROTO, e.g. 10.77.1.2:8080/tcp or 10.77.0.0/24:*/udp"
        guard let colon = text.lastIndex(of: ":") else { throw EgressRuleError(text: text, problem: "no port; \(example)") }
        let host = text[..<colon], rest = text[text.index(after: colon)...]
        let portAndProto = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard portAndProto.count == 2, let proto = TransportProtocol(rawValue: String(portAndProto[1])) else {
            throw EgressRuleError(text: text, problem: "the protocol must be tcp or udp; \(example)")
        }
        var port: UInt16?
        if portAndProto[0] != "*" {
            guard let number = UInt16(portAndProto[0]), number > 0 else { throw EgressRuleError(text: text, problem: "the port must be 1–65535 or *; \(example)") }
            port = number
        }
        let parts = host.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = Self.ipv4(parts[0]) else {
            throw EgressRuleError(text: text, problem: "\(UntrustedText.quoted(String(host), limit: 60)) is not an IPv4 address or CIDR block; \(example)")
        }
        var prefix = 32
        if parts.count == 2 {
            guard let bits = Int(parts[1]), (0...32).contains(bits) else { throw EgressRuleError(text: text, problem: "the prefix length must be 0–32") }
            prefix = bits
        }
        self.init(address: address, prefix: prefix, port: port, proto: proto)
    }

    /// A dotted IPv4 address (no leading zeros), host byte order; nil for anything else.
    public static func ipv4(_ text: Substring) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            // No leading zeros: "010" means 8 to some parsers and 10 to others.
            guard let byte = UInt8(octet), octet == "0" || !octet.hasPrefix("0") else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    public static func dotted(_ address: UInt32) -> String {
        "\(address >> 24).\(address >> 16 & 0xff).\(address >> 8 & 0xff).\(address & 0xff)"
    }

    /// `10.77.1.2`, or `10.77.0.0/24`.
    public var destination: String { prefix == 32 ? Self.dotted(address) : "\(Self.dotted(address))/\(prefix)" }

    public var description: String { "\(destination):\(port.map(String.init) ?? "*")/\(proto.rawValue)" }

    /// This rule as an nftables match, accepted.
    var nftRule: String {
        "ip daddr \(destination) \(proto.rawValue)\(port.map { " dport \($0)" } ?? " dport 1-65535") accept"
    }
}

public struct EgressRuleError: Error, Equatable, CustomStringConvertible, Sendable {
    public let text: String
    public let problem: String
    public var description: String { "egress \(UntrustedText.quoted(text, limit: 80)): \(problem)" }
}

/// What a sandbox may reach: nothing (the default: its network namespace holds
/// only loopback), or exactly `rules`, through a veth the worker filters.
public struct EgressGrant: Equatable, Sendable {
    public var rules: [EgressRule]
    /// The one DNS server the task may query (udp and tcp 53); nil: no DNS.
    public var resolver: UInt32?

    public init(rules: [EgressRule], resolver: UInt32? = nil) {
        self.rules = rules
        self.resolver = resolver
    }

    /// Every destination, the resolver's port 53 included.
    var allRules: [EgressRule] {
        rules + (resolver.map { address in
            [EgressRule(address: address, prefix: 32, port: 53, proto: .udp), EgressRule(address: address, prefix: 32, port: 53, proto: .tcp)]
        } ?? [])
    }
}

/// Where a run with an egress grant reports what its filter dropped: handed
/// in with the spec, read by the caller once the run is over.
public final class EgressReport: Sendable {
    private let blocked = Mutex<UInt64?>(nil)

    public init() {}

    /// Packets dropped; nil until the run's network was taken down.
    public var blockedPackets: UInt64? { blocked.withLock { $0 } }

    func record(blockedPackets: UInt64) { blocked.withLock { $0 = blockedPackets } }
}
