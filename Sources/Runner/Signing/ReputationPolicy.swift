import TOMLKit
import Trust

/// `[reputation]` in this host's `policy.toml` (docs/ARCHITECTURE.md §11): which
/// nodes take which work, by their reputation as this host recomputes it from
/// signed history (`NodeReputation`). This host's own file only, as
/// `worker_trust`: a fleet policy on main never sets whose work counts. Every
/// limit is off by default: a grid without the table runs as before.
public struct ReputationPolicy: Equatable, Sendable {
    /// Quorum and critical tasks only for nodes with at least this many consecutive
    /// valid results (a new node's probation: it takes the other tasks meanwhile). 0: any node.
    public var minConsecutiveValid = 0
    /// ... and an error rate at most this (nil: any).
    public var maxErrorRate: Double?
    /// A node outvoted this many times is refused further claims and votes by this
    /// host's workers and folds (nil: never).
    public var maxOutvoted: Int?
    /// `quorum: "adaptive"` runs once on a node with at least this many consecutive
    /// valid results and an error rate within `maxErrorRate` (BOINC's adaptive replication).
    public var adaptiveConsecutiveValid = 10
    /// Replicas of one quorum task go to distinct nodes, or also to distinct operators: a vote
    /// counts once per trust anchor — the node key, or the CA that certified it (`WorkerTrust.anchor`).
    public var distinctOperators = false

    public init() {}

    static let keys = ["min_consecutive_valid", "max_error_rate", "max_outvoted", "adaptive_consecutive_valid", "quorum_distinct"]

    static func parse(_ table: TOMLTable, source: String) throws(TrustFileError) -> ReputationPolicy {
        var policy = ReputationPolicy()
        let fields = PolicyFields(table: table, name: "reputation", source: source)
        for key in table.keys.sorted() {
            switch key {
            case "min_consecutive_valid": policy.minConsecutiveValid = try fields.count(key, in: 0...1_000_000)
            case "adaptive_consecutive_valid": policy.adaptiveConsecutiveValid = try fields.count(key, in: 1...1_000_000)
            case "max_outvoted": policy.maxOutvoted = try fields.count(key, in: 1...1_000_000)
            case "quorum_distinct":
                let word = try fields.string(key)
                guard ["nodes", "operators"].contains(word) else { throw fields.problem("quorum_distinct: expected \"nodes\" or \"operators\"") }
                policy.distinctOperators = word == "operators"
            case "max_error_rate":
                guard let rate = table[key]?.double ?? table[key]?.int.map(Double.init), (0...1).contains(rate) else {
                    throw fields.problem("max_error_rate: expected a number from 0 to 1")
                }
                policy.maxErrorRate = rate
            default: throw fields.unknown(key, known: keys)
            }
        }
        return policy
    }

    /// Why `node` may not take a quorum or critical task under this policy; nil when it may.
    func probation(_ node: NodeReputation.Node?) -> String? {
        let valid = node?.consecutiveValid ?? 0, rate = node?.errorRate ?? 0
        if valid < minConsecutiveValid {
            return "\(valid) consecutive valid results, under the \(minConsecutiveValid) this host's policy asks for quorum and critical tasks"
        }
        if let maxErrorRate, rate > maxErrorRate { return "error rate \(rate), over the \(maxErrorRate) this host's policy allows for quorum and critical tasks" }
        return nil
    }

    /// Why `node`'s claims and votes are refused outright; nil when they are not.
    func barred(_ node: NodeReputation.Node?) -> String? {
        guard let maxOutvoted, let outvoted = node?.outvoted, outvoted >= maxOutvoted else { return nil }
        return "outvoted \(outvoted) times (this host's policy refuses a node's claims and votes from \(maxOutvoted))"
    }

    /// Whether an adaptive quorum task may be decided by `node`'s one vote.
    func provenForAdaptive(_ node: NodeReputation.Node?) -> Bool {
        guard let node, node.consecutiveValid >= adaptiveConsecutiveValid, node.outvoted == 0 else { return false }
        return maxErrorRate.map { node.errorRate <= $0 } ?? true
    }
}
