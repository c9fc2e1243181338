import Sandbox
/// How an attempt at a task ended without a result (docs/ARCHITECTURE.md §6).
public enum AttemptEnd: String, Sendable, CaseIterable {
    /// Its worker stopped renewing the lease (killed, hung, cut off from the grid).
    /// The task may be what brought the worker down, so this counts toward `max_attempts`.
    case leaseExpired = "lease_expired"
    /// Its worker gave the task back for a fault of its own (image missing there,
    /// sandbox setup failed): not the task's doing, so it counts only toward the
    /// separate host-fault cap (`AttemptBudget`).
    case hostFault = "host_fault"
    /// Its worker gave the task back, not for a fault: it was stopping (SIGTERM
    /// past the grace period), or could not re-read the grid after claiming.
    case givenBack = "given_back"
    /// Its worker's process ended with the task unfinished (crashed, killed) and the
    /// restarted process released the claim at once instead of letting the lease run
    /// out. Counts toward `max_attempts` like an expired lease: the task may be why.
    case workerRestarted = "worker_restarted"
}

/// One earlier attempt at a task, kept in the claim record (history is not in
/// the claim ref's commits: they are orphans, docs/ARCHITECTURE.md §6) and copied
/// into the result record, so `dgrid result` shows every node that tried and why
/// it stopped.
public struct AttemptRecord: Equatable, Sendable {
    public var attempt: Int
    public var nodeID: String
    public var claimedAt: String
    public var endedAt: String
    public var end: AttemptEnd
    /// One line for people; fixed words, ids and times, never a host path.
    public var reason: String

    /// Reasons are written by workers and read by everyone: bounded so a claim record stays small.
    public static let maxReasonLength = 240

    public init(attempt: Int, nodeID: String, claimedAt: String, endedAt: String, end: AttemptEnd, reason: String) {
        self.attempt = attempt
        self.nodeID = nodeID
        self.claimedAt = claimedAt
        self.endedAt = endedAt
        self.end = end
        self.reason = reason.count > Self.maxReasonLength ? String(reason.prefix(Self.maxReasonLength - 1)) + "…" : reason
    }

    /// "attempt 2 on node_b: lease expired at … (worker node_b stopped renewing)".
    public var summary: String {
        "attempt \(attempt) on \(nodeID): \(UntrustedText.shown(reason, limit: Self.maxReasonLength))"
    }

    var json: LedgerJSON.Value {
        .object([
            "attempt": .int(Int64(attempt)), "node_id": .string(nodeID), "claimed_at": .string(claimedAt),
            "ended_at": .string(endedAt), "end": .string(end.rawValue), "reason": .string(reason),
        ])
    }

    /// Nil unless every field is there and well-formed: a record a writer mangled is not half-believed.
    static func parse(_ value: LedgerJSON.Value) -> AttemptRecord? {
        guard case .object(let members) = value else { return nil }
        let fields = RecordFields(members: members)
        guard let attempt = fields.int("attempt"), attempt > 0,
              let nodeID = fields.string("node_id"), LedgerLayout.isValidNodeID(nodeID),
              let end = fields.string("end").flatMap(AttemptEnd.init(rawValue:)),
              let reason = fields.string("reason") else { return nil }
        return AttemptRecord(attempt: attempt, nodeID: nodeID, claimedAt: fields.string("claimed_at") ?? "",
                             endedAt: fields.string("ended_at") ?? "", end: end, reason: reason)
    }

    static func list(_ attempts: [AttemptRecord]) -> LedgerJSON.Value {
        .array(attempts.map(\.json))
    }

    /// Nil when `value` is not an array of valid attempts; an absent field is an empty list.
    static func parseList(_ value: LedgerJSON.Value?) -> [AttemptRecord]? {
        guard let value, value != .null else { return [] }
        guard case .array(let elements) = value, elements.count <= ClaimRecord.maxPreviousAttempts else { return nil }
        var attempts: [AttemptRecord] = []
        for element in elements {
            guard let attempt = parse(element) else { return nil }
            attempts.append(attempt)
        }
        return attempts
    }
}
