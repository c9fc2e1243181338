import Foundation

/// The webhook events a worker sends about itself (docs/ARCHITECTURE.md §12).
enum WorkerEvents {
    /// This node turned unhealthy (with the published reason: no host path) or healthy again.
    static func health(_ state: NodeHealth, check: HealthCheck?, nodeID: String) -> WebhookEvent {
        var data: [String: LedgerJSON.Value] = ["node_id": .string(nodeID), "health": .string(state.word)]
        if let reason = state.reason { data["reason"] = WebhookEvent.text(reason) }
        if let check { data["check"] = .string(HealthReason(check).rawValue) }
        return WebhookEvent(kind: state == .healthy ? .nodeHealthy : .nodeUnhealthy, source: ["kind": "worker", "node_id": nodeID], data: data)
    }

    /// A security event of the audit log, with the fields the log line has.
    static func security(_ event: AuditEvent) -> WebhookEvent {
        var data: [String: LedgerJSON.Value] = ["event": .string(event.kind.rawValue)]
        if let taskID = event.taskID { data["task_id"] = .string(taskID) }
        if !event.principals.isEmpty { data["principals"] = .array(event.principals.prefix(16).map { WebhookEvent.text($0) }) }
        if !event.fingerprints.isEmpty { data["keys"] = .array(event.fingerprints.prefix(16).map { WebhookEvent.text($0) }) }
        if let reason = event.reason { data["reason"] = WebhookEvent.text(reason) }
        var source = ["kind": "worker"]
        if let nodeID = event.nodeID { source["node_id"] = nodeID }
        return WebhookEvent(kind: .security, time: event.time, source: source, data: data)
    }
}

extension AuditEvent.Kind {
    /// What an operator wants to hear about at once: trust refused or loosened,
    /// a task caught doing what its sandbox forbids, secrets in output. Routine
    /// decisions (a signature accepted, a task waiting on its quota, a timeout)
    /// stay in the log; so does `unsigned_run`, which `unsigned_allowed` announced at start. A sandbox
    /// nothing could end (`sandbox_overdue`) is a host in trouble or a task finding a way around its kill.
    public var isSecurityEvent: Bool {
        switch self {
        case .signatureRefused, .unsignedAllowed, .imageRefused, .quotaRefused, .policyApplied, .policyRefused,
             .egressBlocked, .seccompKilled, .checkpointRefused, .outputRedacted, .sandboxOverdue,
             .resultRefused, .heartbeatRefused, .claimRefused, .resultOutvoted:
            true
        case .signatureAccepted, .unsignedRun, .taskTimedOut, .taskOOMKilled, .quotaDeferred, .pidsLimitHit, .setupFailed:
            false
        }
    }
}

extension WebhookEvent {
    /// A security event of the audit log as a webhook (`security`), for what the CLI records itself.
    public static func security(_ event: AuditEvent) -> WebhookEvent { WorkerEvents.security(event) }
}
