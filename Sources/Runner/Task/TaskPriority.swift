/// How urgently a task should run. The raw values are the folder names under
/// `tasks/queue/` and the `priority` field of a task file.
public enum TaskPriority: String, CaseIterable, Sendable, Comparable {
    // Declaration order is sort order: critical first.
    case critical, high, normal, low

    /// Rank 0 is the most urgent.
    public var rank: Int {
        switch self {
        case .critical: return 0
        case .high: return 1
        case .normal: return 2
        case .low: return 3
        }
    }

    /// `a < b` means `a` runs first.
    public static func < (a: TaskPriority, b: TaskPriority) -> Bool { a.rank < b.rank }
}
