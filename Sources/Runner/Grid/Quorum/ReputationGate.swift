/// This host's `[reputation]` policy applied to one listing (docs/ARCHITECTURE.md §11):
/// quorum and critical tasks ("gated work") only for nodes past their probation,
/// no claims or votes at all from a node outvoted too often, and adaptive quorum
/// tasks decided by one vote of a proven node. The figures are this host's own
/// recount of signed history (`NodeReputation.figures`), worked out only when a
/// question needs them and then once per tip of main.
struct ReputationGate {
    let policy: ReputationPolicy
    private let figures: () throws(GridError) -> [String: NodeReputation.Node]

    init(policy: ReputationPolicy, figures: @escaping () throws(GridError) -> [String: NodeReputation.Node]) {
        self.policy = policy
        self.figures = figures
    }

    /// The gate of a connection's worker trust at `snapshot`; nil without a worker trust (nothing is gated).
    static func of(_ connection: GridConnection, trust: WorkerTrust?, at snapshot: GridSnapshot) -> ReputationGate? {
        guard let trust else { return nil }
        let reputation = NodeReputation(connection: connection, trust: trust)
        return ReputationGate(policy: trust.reputation) { () throws(GridError) in try reputation.figures(snapshot) }
    }

    /// Whether a task is gated work: a quorum task or a critical one.
    static func isGated(priority: TaskPriority?, quorum: TaskQuorum?) -> Bool {
        quorum != nil || priority == .critical
    }

    /// Why `node` may claim or vote on nothing here; nil when it may.
    func barred(_ node: String) throws(GridError) -> String? {
        guard policy.maxOutvoted != nil else { return nil }
        return policy.barred(try figures()[node]).map { "node \(node) is \($0)" }
    }

    /// Why `node` may not take gated work here (still on probation); nil when it may.
    func probation(_ node: String) throws(GridError) -> String? {
        guard policy.minConsecutiveValid > 0 || policy.maxErrorRate != nil else { return nil }
        return policy.probation(try figures()[node]).map { "node \(node) has \($0)" }
    }

    /// Why `node`'s claim on (or result for) a task is refused here; nil when it stands.
    func refusal(_ node: String, gated: Bool) throws(GridError) -> String? {
        if let barred = try barred(node) { return barred }
        return gated ? try probation(node) : nil
    }

    /// Whether an adaptive quorum task may be decided by `node`'s one vote.
    func proven(_ node: String) throws(GridError) -> Bool {
        policy.provenForAdaptive(try figures()[node])
    }

    /// Those of `nodes` that are proven.
    func provenAmong(_ nodes: [String]) throws(GridError) -> Set<String> {
        var proven: Set<String> = []
        for node in nodes where try self.proven(node) { proven.insert(node) }
        return proven
    }
}
