import Sandbox
/// What a file under `tasks/queue/` is (docs/ARCHITECTURE.md §6): a task to
/// run, a placeholder, or something the fold cannot place, with why. Names
/// come from whoever can push to the grid (docs/THREATS.md, attacker 3); every
/// file gets exactly one answer, so none sits in the queue unrun and uncounted.
///
/// Queue paths read, in dgrid's spelling or D-GRID's:
///   tasks/queue/<id>.json                              D-GRID's flat queue
///   tasks/queue/<priority>/<id>.json                   high/, or D-GRID's high-priority/
///   tasks/queue/<priority>/<shard>/<id>.json           high/3/ (dgrid submit), or
///                                                      D-GRID's high-priority/shard-3/
/// `.gitkeep` anywhere is a placeholder (dgrid init and D-GRID create them);
/// `<id>.json.sig` beside a task is its signature file (docs/ARCHITECTURE.md §9).
public enum QueuePlacement: Equatable, Sendable {
    case task(QueueLocation)
    case placeholder
    /// The signatures of the task at `taskPath`; it travels with the task.
    case signature(taskPath: String)
    /// Not a task file the grid can read: the fold sets it aside under
    /// `tasks/rejected/unplaced/` with `reason` (one line, writer text escaped).
    case unplaceable(reason: String)

    static let placeholderName = ".gitkeep"

    /// `path` relative to the repository; nil when it is not under `tasks/queue/`.
    public static func of(path: String) -> QueuePlacement? {
        guard path.hasPrefix(LedgerLayout.queueRoot) else { return nil }
        let parts = path.dropFirst(LedgerLayout.queueRoot.count).split(separator: "/", omittingEmptySubsequences: false)
        guard let name = parts.last else { return nil }
        if name == placeholderName { return .placeholder }
        let directories = parts.dropLast()
        guard directories.count <= 2 else {
            return .unplaceable(reason: "at an unknown depth: task files go in tasks/queue/, tasks/queue/<priority>/ "
                                + "or tasks/queue/<priority>/<shard>/")
        }
        var priority: TaskPriority?
        var shard: Int?
        if let first = directories.first {
            guard let parsed = priorityDirectory(first) else {
                return .unplaceable(reason: "\(UntrustedText.quoted(String(first))) is not a priority directory "
                                    + "(critical, high, normal or low, or D-GRID's high-priority and the like)")
            }
            priority = parsed
        }
        if directories.count == 2 {
            guard let parsed = shardDirectory(directories[directories.startIndex + 1]) else {
                return .unplaceable(reason: "\(UntrustedText.quoted(String(directories[directories.startIndex + 1]))) is not a shard "
                                    + "directory (a number below 1000000 written without leading zeros, like 3, or D-GRID's shard-3)")
            }
            shard = parsed
        }
        if let suffix = TaskSignatureFiles.suffixes.first(where: { name.hasSuffix(".json" + $0) }) {
            let taskPath = String(path.dropLast(suffix.count))
            guard case .task? = of(path: taskPath) else {
                return .unplaceable(reason: "\(UntrustedText.quoted(String(name))) is not the signature file of a task file name")
            }
            return .signature(taskPath: taskPath)
        }
        guard name.hasSuffix(".json") else {
            return .unplaceable(reason: "\(UntrustedText.quoted(String(name))) is not a task file: task files are named <task_id>.json")
        }
        let id = String(name.dropLast(".json".count))
        guard TaskParser.isValidTaskID(id) else {
            return .unplaceable(reason: "\(UntrustedText.quoted(id)) is not a valid task id (\(TaskIdentifier.rule))")
        }
        return .task(QueueLocation(path: path, taskID: id, priority: priority, shard: shard))
    }

    /// `high` (dgrid) or `high-priority` (D-GRID).
    static func priorityDirectory(_ name: Substring) -> TaskPriority? {
        let word = name.hasSuffix("-priority") ? name.dropLast("-priority".count) : name
        return TaskPriority(rawValue: String(word))
    }

    /// `3` (dgrid) or `shard-3` (D-GRID), written canonically (`0`, `17`; not
    /// `017`, `+1` or `-1`) and below 1,000,000, so one shard has one spelling per style.
    static func shardDirectory(_ name: Substring) -> Int? {
        let digits = name.hasPrefix("shard-") ? name.dropFirst("shard-".count) : name
        guard (1...6).contains(digits.utf8.count),
              digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              digits == "0" || !digits.hasPrefix("0") else { return nil }
        return Int(digits)
    }
}
