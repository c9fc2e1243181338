/// A task's `dependency_mode` (docs/ARCHITECTURE.md §10): when its `depends_on`
/// tasks let it run. D-GRID's short spellings `all` and `any` read as
/// `all_succeeded` and `any_succeeded`.
public enum DependencyMode: String, Sendable, CaseIterable {
    /// Every dependency completed (the default).
    case allSucceeded = "all_succeeded"
    /// Every dependency finished, however it ended: a merge that reports on failures too.
    case allFinished = "all_finished"
    /// At least one dependency completed: the first of several mirrors to succeed.
    case anySucceeded = "any_succeeded"

    public static let `default` = DependencyMode.allSucceeded

    /// The mode a task file's text names, with D-GRID's spellings; nil for any other.
    public init?(field text: String) {
        switch text {
        case "all": self = .allSucceeded
        case "any": self = .anySucceeded
        default: self.init(rawValue: text)
        }
    }

    /// Every spelling a task file may use, for error messages.
    public static let spellings = allCases.map(\.rawValue).joined(separator: ", ") + " (or D-GRID's all, any)"
}
