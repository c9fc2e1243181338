/// The one line `systemctl status dgrid-worker@GRID` shows for a worker
/// (`STATUS=`): what it is doing, then its counts. Built from the worker's
/// state on each turn of its main loop; sent only when it changes.
struct WorkerServiceStatus: Equatable, Sendable {
    var health: NodeHealth
    var stopping: Bool
    var running: Int
    var slots: Int
    var completed: Int
    var failed: Int
    var rejected: Int

    var line: String {
        let counts = "\(running)/\(slots) slots busy; \(completed) completed, \(failed) failed, \(rejected) rejected"
        if stopping {
            return "stopping: claiming nothing, \(running == 1 ? "1 task" : "\(running) tasks") still running; " + counts
        }
        switch health {
        case .healthy: return "claiming: " + counts
        case .unhealthy(let reason): return "unhealthy, claiming nothing: \(reason); " + counts
        }
    }
}
