/// Whether a claim still binds its task to its node.
public enum ClaimState: String, Sendable {
    /// The node is working on the task and renews the lease.
    case held
    /// The node gave the task back (a host fault, or stopping): anyone may take
    /// it over at once. Its `lease_until` is the release time, so a worker that
    /// does not know this field sees an expired lease and takes it over too.
    case released
}

/// `claim.json` in the commit at `refs/dgrid/claims/<id>` (docs/ARCHITECTURE.md §6): who holds a
/// task, which attempt this is, until when the lease runs, and how every
/// earlier attempt ended. The claim ref holds one orphan commit (renewals and
/// takeovers replace it), so whatever must survive a takeover is in here.
public struct ClaimRecord: Equatable, Sendable {
    public var taskID: String
    public var nodeID: String
    public var attempt: Int
    public var claimedAt: String
    /// ISO-8601; after this another worker may take the task over.
    public var leaseUntil: String
    /// Free text from the running task's worker ("running", "50%"), if any.
    public var progress: String?
    public var state: ClaimState
    /// Earlier attempts, oldest first; for a released claim, its own attempt is the last.
    public var previousAttempts: [AttemptRecord]
    /// Which run of a quorum task this claims (`refs/dgrid/claims/<id>/<n>`, docs/ARCHITECTURE.md §11); nil for a task run once.
    public var replica: Int?

    /// The most attempts a record keeps. Every counted attempt fits (`AttemptBudget`
    /// caps them well below this); past it, the oldest uncounted ones (given
    /// back) go first. At ~400 bytes each the record stays far below the read limit.
    public static let maxPreviousAttempts = 100
    /// The highest attempt number a record may carry. A writer can push any number, and the next
    /// claim adds one to it: Int.max would trap the worker that takes the task over. No task is
    /// tried a million times (`AttemptBudget` ends it long before), so a record past this is forged.
    public static let attemptLimit = 1 << 20
    /// How much of `claim.json` is read.
    public static let readLimit = 128 * 1024

    public init(taskID: String, nodeID: String, attempt: Int, claimedAt: String, leaseUntil: String, progress: String? = nil,
                state: ClaimState = .held, previousAttempts: [AttemptRecord] = []) {
        self.taskID = taskID
        self.nodeID = nodeID
        self.attempt = attempt
        self.claimedAt = claimedAt
        self.leaseUntil = leaseUntil
        self.progress = progress
        self.state = state
        self.previousAttempts = previousAttempts
    }

    public func json() -> [UInt8] {
        var members: [String: LedgerJSON.Value] = [
            "task_id": .string(taskID), "node_id": .string(nodeID), "attempt": .int(Int64(attempt)),
            "claimed_at": .string(claimedAt), "lease_until": .string(leaseUntil), "progress": .text(progress),
            "state": .string(state.rawValue), "previous_attempts": AttemptRecord.list(previousAttempts),
        ]
        if let replica { members["replica"] = .int(Int64(replica)) }
        return LedgerJSON.write(.object(members))
    }

    /// This record's own attempt, ended now for `end`: what the next holder keeps in its history.
    public func ended(_ end: AttemptEnd, at endedAt: String, reason: String) -> AttemptRecord {
        AttemptRecord(attempt: attempt, nodeID: nodeID, claimedAt: claimedAt, endedAt: endedAt, end: end, reason: reason)
    }

    /// The attempts before the next one: for a released claim the list as it is
    /// (the release recorded its own end), for a held one whose lease ran out,
    /// the list and this attempt ended by that.
    public var historyForTakeover: [AttemptRecord] {
        switch state {
        case .released:
            return previousAttempts
        case .held:
            let expired = ended(.leaseExpired, at: leaseUntil,
                                reason: "lease expired at \(leaseUntil) (worker \(nodeID) stopped renewing)")
            return Self.appending(expired, to: previousAttempts)
        }
    }

    /// `attempts` + `attempt`, kept to `maxPreviousAttempts` by dropping the oldest
    /// uncounted entries first (then, only if every entry counts, the oldest).
    public static func appending(_ attempt: AttemptRecord, to attempts: [AttemptRecord]) -> [AttemptRecord] {
        var list = attempts + [attempt]
        while list.count > maxPreviousAttempts {
            let drop = list.firstIndex { $0.end == .givenBack } ?? list.startIndex
            list.remove(at: drop)
        }
        return list
    }

    /// Nil unless the ids are valid, `attempt` is a positive integer up to `attemptLimit`, `lease_until`
    /// is a time, and `state` and `previous_attempts` (when present) are well-formed:
    /// a claim whose lease cannot be read cannot be judged expired or not, and
    /// the caller must treat the ref as malformed rather than guess.
    public static func parse(_ bytes: [UInt8]) -> ClaimRecord? {
        guard let f = RecordFields(bytes),
              let taskID = f.string("task_id"), TaskParser.isValidTaskID(taskID),
              let nodeID = f.string("node_id"), LedgerLayout.isValidNodeID(nodeID),
              let attempt = f.int("attempt"), attempt > 0, attempt <= attemptLimit,
              let leaseUntil = f.string("lease_until"), ISOTime.parse(leaseUntil) != nil,
              let previous = AttemptRecord.parseList(f.members["previous_attempts"]) else { return nil }
        var state = ClaimState.held
        if let text = f.string("state") {
            guard let known = ClaimState(rawValue: text) else { return nil }
            state = known
        }
        var record = ClaimRecord(taskID: taskID, nodeID: nodeID, attempt: attempt, claimedAt: f.string("claimed_at") ?? "",
                                 leaseUntil: leaseUntil, progress: f.string("progress"), state: state, previousAttempts: previous)
        if f.members["replica"] != nil && f.members["replica"] != .null {
            guard let replica = f.int("replica"), ReplicaRefs.replicaRange.contains(replica) else { return nil }
            record.replica = replica
        }
        return record
    }
}
