import Foundation
import Glibc

/// One event a webhook receives (docs/ARCHITECTURE.md §12), as a JSON object:
/// `id` (random, unique: the receiver's replay check), `type`, `time`
/// (ISO 8601 UTC: the receiver's freshness check), `source` (what sent it),
/// and `data`. The signature covers the exact bytes, so id and time cannot be
/// changed without breaking it.
public struct WebhookEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// `dgrid metrics --watch`: the grid needs more workers to drain its queue within the target.
        case scaleUp = "scale.up"
        /// `dgrid metrics --watch`: fewer workers would do.
        case scaleDown = "scale.down"
        /// A node turned unhealthy (the worker itself, or a node record `--watch` read).
        case nodeUnhealthy = "node.unhealthy"
        /// It passed its self-check again.
        case nodeHealthy = "node.healthy"
        /// A node's heartbeat stopped (`--watch`).
        case nodeOffline = "node.offline"
        /// A security event of the worker's audit log (docs/ARCHITECTURE.md §9).
        case security = "security"
    }

    public let id: String
    public let kind: Kind
    public let time: Date
    /// Who sent it: `worker` (with `node_id`) or `metrics` (`dgrid metrics --watch`).
    public let source: [String: String]
    let data: [String: LedgerJSON.Value]

    /// The longest text a field carries: reasons are one line, events stay small.
    static let textLimit = 1_024

    init(kind: Kind, time: Date = Date(), source: [String: String], data: [String: LedgerJSON.Value], id: String = WebhookEvent.newID()) {
        self.id = id
        self.kind = kind
        self.time = time
        self.source = source
        self.data = data
    }

    /// `evt_` and 32 random hex digits (getrandom).
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        func hex(_ value: UInt64) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }
        return "evt_" + hex(high) + hex(low)
    }

    /// A text field, cut to `textLimit` (on a character boundary).
    static func text(_ value: String) -> LedgerJSON.Value {
        .string(value.count > textLimit ? String(value.prefix(textLimit)) + "…" : value)
    }

    /// The exact bytes POSTed and signed: compact JSON, keys sorted.
    public var body: [UInt8] {
        LedgerJSON.write(.object([
            "id": .string(id), "type": .string(kind.rawValue), "time": .string(ISOTime.string(time)),
            "source": .object(source.mapValues { .string($0) }), "data": .object(data),
        ]), pretty: false)
    }
}
