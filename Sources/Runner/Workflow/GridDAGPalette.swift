extension GridDAG.State {
    /// The fill of a task's box in this state: one palette for `dgrid dag --dot`
    /// and the dashboard's graph (docs/ARCHITECTURE.md §10, §12).
    public var fill: String {
        switch self {
        case .ready: "#cfe8ff"
        case .waiting: "#eeeeee"
        case .blocked: "#ffd8a8"
        case .running: "#fff3a0"
        case .completed: "#b7e4c7"
        case .failed, .rejected: "#f4a6a6"
        case .skipped: "#dddddd"
        case .missing: "#ffffff"
        }
    }
}
