/// `claim.json` in the commit at `refs/dgrid/claims/<id>` (docs/ARCHITECTURE.md §6): who holds a
/// task, which attempt this is, and until when the lease runs.
public struct ClaimRecord: Equatable, Sendable {
    public var taskID: String
    public var nodeID: String
    public var attempt: Int
    public var claimedAt: String
    /// ISO-8601; after this another worker may take the task over.
    public var leaseUntil: String
    /// Free text from the running task's worker ("running", "50%"), if any.
    public var progress: String?

    public init(taskID: String, nodeID: String, attempt: Int, claimedAt: String, leaseUntil: String, progress: String? = nil) {
        self.taskID = taskID
        self.nodeID = nodeID
        self.attempt = attempt
        self.claimedAt = claimedAt
        self.leaseUntil = leaseUntil
        self.progress = progress
    }

    public func json() -> [UInt8] {
        LedgerJSON.write(.object([
            "task_id": .string(taskID), "node_id": .string(nodeID), "attempt": .int(Int64(attempt)),
            "claimed_at": .string(claimedAt), "lease_until": .string(leaseUntil), "progress": .text(progress),
        ]))
    }

    /// Nil unless the ids are valid, `attempt` is a positive integer and `lease_until`
    /// is a time: a claim whose lease cannot be read cannot be judged expired or not,
    /// and the caller must treat the ref as malformed rather than guess.
    public static func parse(_ bytes: [UInt8]) -> ClaimRecord? {
        guard let f = RecordFields(bytes),
              let taskID = f.string("task_id"), TaskParser.isValidTaskID(taskID),
              let nodeID = f.string("node_id"), LedgerLayout.isValidNodeID(nodeID),
              let attempt = f.int("attempt"), attempt > 0,
              let leaseUntil = f.string("lease_until"), ISOTime.parse(leaseUntil) != nil else { return nil }
        return ClaimRecord(taskID: taskID, nodeID: nodeID, attempt: attempt, claimedAt: f.string("claimed_at") ?? "",
                           leaseUntil: leaseUntil, progress: f.string("progress"))
    }
}
