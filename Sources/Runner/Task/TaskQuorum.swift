/// A task run by several nodes whose results must agree (docs/ARCHITECTURE.md §11,
/// BOINC's model): `replicas` distinct nodes run it, `agree` of them must publish
/// the same outcome, and at most `maxReplicas` runs are made in all when they do
/// not (a replica lost to a dead worker is taken over, not counted again).
public struct TaskQuorum: Equatable, Sendable {
    /// What two results must share to agree.
    public enum Field: String, CaseIterable, Sendable, Comparable {
        case exitCode = "exit_code", stdout, artifacts

        public static func < (a: Field, b: Field) -> Bool { a.rawValue < b.rawValue }
    }

    public var replicas: Int
    public var agree: Int
    public var maxReplicas: Int
    public var compare: Set<Field>
    /// `"quorum": "adaptive"` (BOINC's adaptive replication): one run suffices on a node
    /// with a long clean record (`ReputationPolicy.provenForAdaptive`); elsewhere two must agree.
    public var adaptive = false

    /// What `"adaptive"` stands for: two agreeing runs, up to four, unless one proven node's run decides.
    public static var adaptiveDefault: TaskQuorum {
        var quorum = TaskQuorum(replicas: 2, agree: 2, maxReplicas: 4)!
        quorum.adaptive = true
        return quorum
    }

    /// The most replicas a task may ask for: each is a claim ref, a run and a vote on the grid.
    public static let replicaLimit = 16

    /// nil when the numbers do not hold together (`problem` says why).
    public init?(replicas: Int, agree: Int, maxReplicas: Int? = nil, compare: Set<Field> = Set(Field.allCases)) {
        let maxReplicas = maxReplicas ?? Self.defaultMaxReplicas(replicas)
        guard Self.problem(replicas: replicas, agree: agree, maxReplicas: maxReplicas, compare: compare) == nil else { return nil }
        self.replicas = replicas
        self.agree = agree
        self.maxReplicas = maxReplicas
        self.compare = compare
    }

    /// Two runs beyond the replicas, for disagreement (BOINC's `max_total_results` beside `min_quorum`).
    static func defaultMaxReplicas(_ replicas: Int) -> Int {
        replicas == 1 ? 1 : min(replicaLimit, replicas + 2)
    }

    static func problem(replicas: Int, agree: Int, maxReplicas: Int, compare: Set<Field>) -> String? {
        guard (1...replicaLimit).contains(replicas) else { return "replicas: \(replicas) is outside 1...\(replicaLimit)" }
        guard (1...replicas).contains(agree) else { return "agree: \(agree) is outside 1...\(replicas) (replicas)" }
        guard (replicas...replicaLimit).contains(maxReplicas) else {
            return "max_replicas: \(maxReplicas) is outside \(replicas) (replicas)...\(replicaLimit)"
        }
        guard !compare.isEmpty else { return "compare: name at least one of \(Field.allCases.map(\.rawValue).joined(separator: ", "))" }
        return nil
    }

    /// One run is no quorum: such a task runs as any other.
    public var isReplicated: Bool { replicas > 1 }

    /// How the task file says it: D-GRID's integer when that says it all, else the object.
    func value() -> LedgerJSON.Value {
        if adaptive { return .string("adaptive") }
        if agree == replicas, maxReplicas == Self.defaultMaxReplicas(replicas), compare == Set(Field.allCases) {
            return .number(.init(Int64(replicas)))
        }
        var members: [String: LedgerJSON.Value] = [
            "replicas": .number(.init(Int64(replicas))), "agree": .number(.init(Int64(agree))),
            "max_replicas": .number(.init(Int64(maxReplicas))),
        ]
        if compare != Set(Field.allCases) { members["compare"] = .array(compare.sorted().map { .string($0.rawValue) }) }
        return .object(members)
    }
}
