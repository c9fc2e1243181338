import CShims
import Glibc
import SandboxSupport
import Synchronization

/// The worker's slot watchdog's handle on one running sandbox (docs/ARCHITECTURE.md
/// §12, "Slot watchdog"): when its task started, and a kill that does not go
/// through the supervisor — the supervisor is what the watchdog distrusts. The
/// runner attaches the sandbox once its task runs and detaches it before the
/// cgroup goes; a kill before or after does nothing.
public final class SandboxWatch: Sendable {
    private enum State {
        case waiting
        /// A descriptor of our own for pid 1's pidfd (a kill never reaches a
        /// process that took its pid), and its cgroup when it has one.
        case running(startedAt: UInt64, pidfd: Int32, group: (any SandboxCgroup)?)
        case ended
    }
    private let state = Mutex<State>(.waiting)

    public init() {}

    func attach(pidfd: Int32, group: (any SandboxCgroup)?, startedAt: UInt64) {
        let own = fcntl(pidfd, F_DUPFD_CLOEXEC, 0)
        state.withLock { $0 = own >= 0 ? .running(startedAt: startedAt, pidfd: own, group: group) : .ended }
    }

    func detach() {
        state.withLock { state in
            if case .running(_, let pidfd, _) = state { close(pidfd) }
            state = .ended
        }
    }

    /// When the task started (`Clock.monotonicNanoseconds`); nil before and after.
    public var startedAt: UInt64? {
        state.withLock { state in
            if case .running(let startedAt, _, _) = state { return startedAt }
            return nil
        }
    }

    /// SIGKILL to pid 1 and to every process of the sandbox's cgroup, which a
    /// frozen group gets on thaw (`SandboxCgroup.killAll`). Returns whether the
    /// sandbox was running. Holds the handle meanwhile, so the runner cannot
    /// remove the group under it (the runner waits at most the kill's 2 s).
    @discardableResult
    public func kill() -> Bool {
        state.withLock { state in
            guard case .running(_, let pidfd, let group) = state else { return false }
            _ = dgrid_pidfd_kill(pidfd)
            group?.killAll()
            return true
        }
    }
}
