/// Paths in main's tree and ref names (docs/ARCHITECTURE.md §6). Builders assume ids already
/// passed `TaskParser.isValidTaskID` / `isValidNodeID`; `queueEntry(path:)` and
/// `nodeAndTask(inName:)` are the readers for names found in the tree, which a
/// repository writer controls.
public enum LedgerLayout {
    public static let logSuffix = ".log"
    static let queueRoot = "tasks/queue/"

    /// `tasks/queue/<priority>/<shard>/<id>.json`
    public static func queuePath(priority: TaskPriority, shard: Int, taskID: String) -> String {
        "\(queueRoot)\(priority.rawValue)/\(shard)/\(taskID).json"
    }

    /// D-GRID's flat `tasks/queue/<id>.json`.
    public static func flatQueuePath(taskID: String) -> String {
        "\(queueRoot)\(taskID).json"
    }

    /// `tasks/in_progress/<node>-<id>.json`
    public static func inProgressPath(node: String, taskID: String) -> String {
        "tasks/in_progress/\(node)-\(taskID).json"
    }

    /// `tasks/completed/<node>-<id>.json`; the result record sits beside it at `logPath(for:)`.
    public static func completedPath(node: String, taskID: String) -> String {
        "tasks/completed/\(node)-\(taskID).json"
    }

    /// `tasks/failed/<node>-<id>.json`
    public static func failedPath(node: String, taskID: String) -> String {
        "tasks/failed/\(node)-\(taskID).json"
    }

    /// `tasks/rejected/<id>.json`; the reason goes to `logPath(for:)`.
    public static func rejectedPath(taskID: String) -> String {
        "tasks/rejected/\(taskID).json"
    }

    /// `nodes/<node>.json`
    public static func nodePath(node: String) -> String {
        "nodes/\(node).json"
    }

    /// The record beside a task file: `<path>.log` (D-GRID's name).
    public static func logPath(for taskPath: String) -> String {
        taskPath + logSuffix
    }

    /// `refs/dgrid/claims/<id>`
    public static func claimRef(taskID: String) -> String { "refs/dgrid/claims/\(taskID)" }
    /// `refs/dgrid/results/<id>`
    public static func resultRef(taskID: String) -> String { "refs/dgrid/results/\(taskID)" }
    /// `refs/dgrid/nodes/<node>`
    public static func nodeRef(node: String) -> String { "refs/dgrid/nodes/\(node)" }

    /// A queue entry found in main's tree, in dgrid's layout or D-GRID's
    /// (`QueuePlacement`); nil for placeholders and for files the fold sets aside.
    public static func queueEntry(path: String) -> QueueLocation? {
        guard case .task(let location)? = QueuePlacement.of(path: path) else { return nil }
        return location
    }

    /// `NodeIdentifier`'s rule: task-id characters, at most 64 bytes, no '-'.
    public static func isValidNodeID(_ id: String) -> Bool {
        NodeIdentifier.isValid(id)
    }

    /// The node and task a `<node>-<task>` name (an in_progress, completed or
    /// failed file name without `.json`) stands for. Node ids hold no '-', so
    /// the first '-' ends the node id: every name reads one way, and
    /// `inProgressPath`/`completedPath`/`failedPath` and this are inverses.
    /// Nil when either part is not a valid id.
    public static func nodeAndTask(inName name: String) -> (node: String, taskID: String)? {
        guard let dash = name.firstIndex(of: "-") else { return nil }
        let node = String(name[..<dash]), taskID = String(name[name.index(after: dash)...])
        guard isValidNodeID(node), TaskParser.isValidTaskID(taskID) else { return nil }
        return (node, taskID)
    }
}

/// Where a queued task file sits in main's tree.
public struct QueueLocation: Equatable, Sendable {
    public let path: String
    /// From the file name, already valid.
    public let taskID: String
    /// From the path; nil for D-GRID's flat layout.
    public let priority: TaskPriority?
    public let shard: Int?

    public init(path: String, taskID: String, priority: TaskPriority?, shard: Int?) {
        self.path = path
        self.taskID = taskID
        self.priority = priority
        self.shard = shard
    }
}
