import Dispatch
import Synchronization

/// A worker's stop request (SIGTERM, passed on by the CLI) and the grace
/// period it gives running tasks. `GridWorker.run` waits on it beside its
/// slots, so a grace period that runs out ends in `run` returning, never in
/// a worker thread ending the process: the CLI decides how to exit
/// (docs/ARCHITECTURE.md §7, §8).
final class WorkerStopRequest: @unchecked Sendable {
    // @unchecked: DispatchSemaphore is thread-safe; the deadline is under a Mutex.
    private let deadline = Mutex<DispatchTime?>(nil)
    private let wake = DispatchSemaphore(value: 0)

    /// Records a stop with `graceSeconds` for running tasks; a second request changes nothing.
    func request(graceSeconds: Double) {
        let first = deadline.withLock { (deadline: inout DispatchTime?) -> Bool in
            guard deadline == nil else { return false }
            deadline = .now() + max(0, graceSeconds)
            return true
        }
        if first { wake.signal() }
    }

    /// Waits for every slot of `group` to finish (true), or for a stop whose
    /// grace period ran out with slots still busy (false).
    func waitForSlots(_ group: DispatchGroup) -> Bool {
        group.notify(queue: .global()) { [wake] in wake.signal() }
        wake.wait()
        guard let deadline = deadline.withLock({ $0 }) else { return true }
        return group.wait(timeout: deadline) == .success
    }
}
