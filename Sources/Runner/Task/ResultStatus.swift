/// How a task ended, as its result record says (docs/ARCHITECTURE.md §6) and
/// D-GRID's folders sort it: `completed/`, `failed/` (failed and skipped) or `rejected/`.
public enum ResultStatus: String, Sendable, CaseIterable {
    /// Exited 0, not killed for time or memory.
    case completed
    /// Ran and failed: a non-zero exit, a timeout, the OOM killer; or never
    /// ran for its own reasons (out of attempts, a set-up failure the task caused).
    case failed
    /// Refused before running: an invalid task file or one over the worker's policy.
    case rejected
    /// Never ran because a dependency's outcome means its `dependency_mode`
    /// cannot be met (docs/ARCHITECTURE.md §10); folded into `failed/`.
    case skipped

    /// D-GRID's rule: completed iff the task exited 0 and was not killed for time or memory.
    public init(exitCode: Int32, timedOut: Bool, oomKilled: Bool) {
        self = exitCode == 0 && !timedOut && !oomKilled ? .completed : .failed
    }
}
