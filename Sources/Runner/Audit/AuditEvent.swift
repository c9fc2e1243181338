import Foundation

/// One trust decision or security event (docs/ARCHITECTURE.md §9), a JSON line
/// in the audit log: when, what, about which task, by whose key, why.
public struct AuditEvent: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case signatureAccepted = "signature_accepted"
        case signatureRefused = "signature_refused"
        case unsignedAllowed = "unsigned_allowed"
        case unsignedRun = "unsigned_run"
        case taskTimedOut = "task_timed_out"
        case taskOOMKilled = "task_oom_killed"
        case outputRedacted = "output_redacted"
        case quotaDeferred = "quota_deferred"
        case quotaRefused = "quota_refused"
        case imageRefused = "image_refused"
        case policyApplied = "policy_applied"
        case policyRefused = "policy_refused"
        case egressBlocked = "egress_blocked"
        case seccompKilled = "seccomp_killed"
        case pidsLimitHit = "pids_limit_hit"
        case setupFailed = "setup_failed"
        /// A task's checkpoint was not restored (another task's, malformed, corrupt): it started afresh.
        case checkpointRefused = "checkpoint_refused"
        /// A sandbox outlived its timeout plus the watchdog's grace: killed by the slot watchdog,
        /// and its slot replaced if that kill did not end it either (docs/ARCHITECTURE.md §12).
        case sandboxOverdue = "sandbox_overdue"
        /// A worker's record the fold would not take: unsigned, or not signed by a key this
        /// host accepts for the node it names (`WorkerTrust`, docs/ARCHITECTURE.md §11).
        case resultRefused = "result_refused"
        case heartbeatRefused = "heartbeat_refused"
        case claimRefused = "claim_refused"
        /// A quorum task was decided against a node's vote (docs/ARCHITECTURE.md §11): it published
        /// a well-formed, signed result the agreeing replicas did not share.
        case resultOutvoted = "result_outvoted"
    }

    public var time: Date
    public var kind: Kind
    public var nodeID: String?
    public var taskID: String?
    public var principals: [String] = []
    public var fingerprints: [String] = []
    public var reason: String?

    public init(time: Date = Date(), kind: Kind, nodeID: String? = nil, taskID: String? = nil,
                principals: [String] = [], fingerprints: [String] = [], reason: String? = nil) {
        self.time = time
        self.kind = kind
        self.nodeID = nodeID
        self.taskID = taskID
        self.principals = principals
        self.fingerprints = fingerprints
        self.reason = reason
    }

    /// One line of compact JSON, keys sorted; strings escaped by the writer.
    public var line: String {
        var members: [String: LedgerJSON.Value] = ["time": .string(ISOTime.string(time)), "event": .string(kind.rawValue)]
        if let nodeID { members["node_id"] = .string(nodeID) }
        if let taskID { members["task_id"] = .string(taskID) }
        if !principals.isEmpty { members["principals"] = .array(principals.map { .string($0) }) }
        if !fingerprints.isEmpty { members["keys"] = .array(fingerprints.map { .string($0) }) }
        if let reason { members["reason"] = .string(reason) }
        return LedgerJSON.compact(.object(members))
    }

    /// What `line` wrote; nil for a line that is not an event.
    public static func parse(_ line: String) -> AuditEvent? {
        guard let f = RecordFields(Array(line.utf8)), let time = f.string("time").flatMap(ISOTime.parse),
              let kind = f.string("event").flatMap(Kind.init(rawValue:)) else { return nil }
        return AuditEvent(time: time, kind: kind, nodeID: f.string("node_id"), taskID: f.string("task_id"),
                          principals: f.stringList("principals"), fingerprints: f.stringList("keys"), reason: f.string("reason"))
    }
}
