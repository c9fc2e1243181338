import Prometheus
import Runner

/// `dgrid metrics --prometheus`: the report in Prometheus' text format, made
/// with swift-prometheus' registry (the worker's own exposition), so names,
/// escaping and types follow the same rules. Gauges throughout: each is the
/// grid's state at this moment, read from the ledger.
enum GridMetricsExposition {
    /// Principals shown as labels at most: the host's allowed_signers bounds them, this bounds the page.
    static let principalLimit = 100

    static func text(_ report: GridMetrics.Report) -> String {
        let registry = PrometheusCollectorRegistry()
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ value: Double) {
            registry.makeGauge(name: name, labels: labels, help: help).set(to: value)
        }
        for (priority, count) in report.queue.byPriority.sorted(by: { $0.key < $1.key }) {
            gauge("dgrid_grid_waiting_tasks", "Queued tasks no live claim holds, by priority.", [("priority", priority)], Double(count))
        }
        gauge("dgrid_grid_ready_tasks", "Waiting tasks whose dependencies let them run now.", [], Double(report.queue.ready))
        gauge("dgrid_grid_oldest_waiting_task_age_seconds", "Age of the oldest waiting task (its created_at), 0 when none waits.", [],
              report.queue.oldestWaitingSeconds ?? 0)
        gauge("dgrid_grid_running_tasks", "Tasks under a live claim with no result yet.", [], Double(report.running))
        let t = report.throughput
        for (status, count) in [("completed", t.completed), ("failed", t.failed), ("rejected", t.rejected)] {
            gauge("dgrid_grid_finished_tasks", "Tasks that finished within the window, by status.", [("status", status)], Double(count))
        }
        gauge("dgrid_grid_window_seconds", "The window the finished counts and durations look back over.", [], t.windowSeconds)
        gauge("dgrid_grid_throughput_tasks_per_minute", "Tasks finished per minute over the window.", [], t.perMinute)
        gauge("dgrid_grid_task_duration_mean_seconds", "Mean observed task duration (see dgrid metrics --json for its source).", [],
              report.durations.meanSeconds)
        let n = report.nodes
        for (state, count) in [("live", n.live - n.unhealthy), ("unhealthy", n.unhealthy), ("offline", n.offline)] {
            gauge("dgrid_grid_nodes", "Nodes by state: live and healthy, live and unhealthy, offline.", [("state", state)], Double(count))
        }
        gauge("dgrid_grid_live_slots", "Slots of the live, healthy nodes.", [], Double(n.liveSlots))
        for usage in report.principals.prefix(principalLimit) {
            gauge("dgrid_grid_principal_running_tasks", "Running tasks per principal.", [("principal", usage.principal)], Double(usage.running))
            gauge("dgrid_grid_principal_queued_tasks", "Queued tasks per principal.", [("principal", usage.principal)], Double(usage.queued))
        }
        let s = report.scaling
        gauge("dgrid_grid_workers_wanted", "Workers wanted for the queue to drain within the target (dgrid metrics --help has the formula).", [],
              Double(s.workersWanted))
        gauge("dgrid_grid_workers_live", "Live, healthy workers.", [], Double(s.workersLive))
        gauge("dgrid_grid_scaling_target_seconds", "The drain target the recommendation is for.", [], s.targetSeconds)
        return registry.emitToString()
    }
}
