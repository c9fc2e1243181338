import Synchronization

/// The caller's handle for freezing a running sandbox (docs/ARCHITECTURE.md §10):
/// a checkpoint is copied while every process of the task is stopped by the
/// cgroup freezer, so no file is caught half written. The runner attaches the
/// sandbox's group when its task starts and detaches it before the group goes.
public final class SandboxFreezer: Sendable {
    private enum State {
        case waiting
        /// The task runs; its group, or nil when the sandbox has none (rootless without delegation).
        case running((any SandboxCgroup)?)
        case ended
    }
    private let state = Mutex<State>(.waiting)

    public init() {}

    func attach(_ cgroup: (any SandboxCgroup)?) { state.withLock { $0 = .running(cgroup) } }
    func detach() { state.withLock { $0 = .ended } }

    public enum Frozen<T> {
        /// `body` ran while the task was frozen.
        case frozen(T)
        /// The task runs in a sandbox without a cgroup: `body` ran, the task not stopped.
        case running(T)
        /// The task is not running (not started yet, or ended): nothing ran.
        case notRunning
        /// The group would not freeze (within 2 s): nothing ran.
        case refused
    }

    /// Runs `body` with the task frozen, then thaws it. Holds the handle for
    /// the whole time, so the runner cannot remove the group under it.
    public func whileFrozen<T>(_ body: () throws -> T) rethrows -> Frozen<T> {
        try state.withLock { (state) throws -> Frozen<T> in
            guard case .running(let cgroup) = state else { return .notRunning }
            guard let cgroup else { return .running(try body()) }
            guard cgroup.freeze() else { return .refused }
            defer { cgroup.thaw() }
            return .frozen(try body())
        }
    }
}
