/// `dgrid metrics --watch` (docs/ARCHITECTURE.md §12): what changed between two
/// rounds, as webhook events. The first round is the baseline: it sends the
/// scaling signal when there is one, but no node events (a node that died a
/// month ago is not news). After that: a node going from live to offline, a
/// live node turning unhealthy or healthy again, and a scaling signal whenever
/// the action or the number of workers wanted changes — not every round, so
/// an autoscaler is told once per decision.
public struct GridWatch: Sendable {
    private var previous: [String: GridMetrics.NodeState]?
    private var lastScale: (action: ScalingAdvice.Action, workers: Int)?

    public init() {}

    public mutating func events(for report: GridMetrics.Report) -> [WebhookEvent] {
        var source = ["kind": "metrics"]
        if let grid = report.gridID { source["grid_id"] = grid }
        var events: [WebhookEvent] = []
        let scaling = report.scaling
        if lastScale.map({ $0.action != scaling.action || $0.workers != scaling.workersWanted }) ?? true {
            if scaling.action != .hold {
                events.append(WebhookEvent(kind: scaling.action == .scaleUp ? .scaleUp : .scaleDown, source: source, data: [
                    "workers_wanted": .int(Int64(scaling.workersWanted)), "workers_live": .int(Int64(scaling.workersLive)),
                    "delta": .int(Int64(scaling.delta)), "waiting": .int(Int64(scaling.waiting)), "running": .int(Int64(scaling.running)),
                    "mean_duration_seconds": .real(scaling.meanDurationSeconds), "target_seconds": .real(scaling.targetSeconds),
                    "slots_per_worker": .real(scaling.slotsPerWorker), "formula": .string(scaling.formula),
                ]))
            }
            lastScale = (scaling.action, scaling.workersWanted)
        }
        let current = Dictionary(report.nodes.records.map { ($0.nodeID, $0) }, uniquingKeysWith: { first, _ in first })
        if let previous {
            for node in report.nodes.records {
                let before = previous[node.nodeID]
                func data() -> [String: LedgerJSON.Value] {
                    var data: [String: LedgerJSON.Value] = ["node_id": .string(node.nodeID), "health": WebhookEvent.text(node.health),
                                                            "last_heartbeat": WebhookEvent.text(node.lastHeartbeat)]
                    if let reason = node.reason { data["reason"] = WebhookEvent.text(reason) }
                    if let age = node.heartbeatAgeSeconds { data["heartbeat_age_seconds"] = .real(age) }
                    return data
                }
                if node.state == .offline, before?.state == .live {
                    events.append(WebhookEvent(kind: .nodeOffline, source: source, data: data()))
                } else if node.state == .live, node.health == "unhealthy", before.map({ $0.health != "unhealthy" || $0.state == .offline }) ?? true {
                    events.append(WebhookEvent(kind: .nodeUnhealthy, source: source, data: data()))
                } else if node.state == .live, node.health != "unhealthy", let before, before.health == "unhealthy", before.state == .live {
                    events.append(WebhookEvent(kind: .nodeHealthy, source: source, data: data()))
                }
            }
        }
        previous = current
        return events
    }
}
