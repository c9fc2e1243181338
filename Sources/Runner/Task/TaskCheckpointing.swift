/// A task's `checkpointing` field (docs/ARCHITECTURE.md §6): D-GRID's
/// `true`/`false`, or the improvement report's object form
/// `{"interval_seconds": N}`. Checkpoints themselves come with workflows;
/// today the field is validated, kept and written back as it was given.
public enum TaskCheckpointing: Equatable, Sendable {
    case enabled(Bool)
    /// Snapshot `/checkpoint` every `intervalSeconds`.
    case every(intervalSeconds: Int)

    /// Bounds for `interval_seconds`: at least a second, at most a day.
    public static let intervalRange = 1...86_400
}
