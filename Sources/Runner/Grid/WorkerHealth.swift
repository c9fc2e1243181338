import Foundation

/// Whether this worker claims tasks (docs/ARCHITECTURE.md §7, "Health"). A host
/// fault makes it unhealthy: it claims nothing, keeps beating (its node record
/// says `unhealthy` and why), and re-runs the fault's self-check with backoff
/// until it passes. Each fault since a task last started doubles the first
/// wait, so a host that passes its check and fails the next task anyway
/// settles into long waits instead of a loop. The clock is passed in.
final class WorkerHealth: @unchecked Sendable {
    private let lock = NSLock()
    private var problem: (reason: String, check: HealthCheck)?
    private var nextCheck = Date.distantPast
    private var wait: Double
    private var checking = false
    private var streak = 0
    /// Set for a fault whose check is cheap and whose cause goes away by itself (a full disk
    /// freed): re-checked at this fixed pace, not with the doubling backoff.
    private var fixedWait: Double?
    let baseSeconds: Double
    let ceilingSeconds: Double
    /// Told when the worker turns unhealthy (with the check that decides) or healthy again
    /// (docs/ARCHITECTURE.md §12: the metrics and the webhook); not when only the reason changes.
    /// Called outside the lock.
    private let onChange: @Sendable (NodeHealth, HealthCheck?) -> Void

    init(baseSeconds: Double, ceilingSeconds: Double, onChange: @escaping @Sendable (NodeHealth, HealthCheck?) -> Void = { _, _ in }) {
        self.baseSeconds = max(0.1, baseSeconds)
        self.ceilingSeconds = max(self.baseSeconds, ceilingSeconds)
        self.onChange = onChange
        wait = self.baseSeconds
    }

    var state: NodeHealth {
        lock.withLock { problem.map { .unhealthy(reason: $0.reason) } ?? .healthy }
    }

    var isHealthy: Bool { lock.withLock { problem == nil } }

    /// A host fault: unhealthy until `check` passes, first tried after the backoff
    /// (or every `recheckEvery` seconds, for cheap checks of conditions that pass by themselves).
    func fault(reason: String, check: HealthCheck, now: Date, recheckEvery: Double? = nil) {
        let turned = lock.withLock { () -> Bool in
            let wasHealthy = problem == nil
            problem = (reason, check)
            fixedWait = recheckEvery.map { max(0.1, $0) }
            if let fixedWait {
                wait = fixedWait
            } else {
                wait = min(ceilingSeconds, baseSeconds * pow(2, Double(min(streak, 30))))
                streak += 1
            }
            nextCheck = now.addingTimeInterval(wait)
            return wasHealthy
        }
        if turned { onChange(.unhealthy(reason: reason), check) }
    }

    /// The self-check due now, handed to one caller at a time; it reports back
    /// with `passed()` or `failed(reason:now:)`. nil when healthy, not yet due, or being run.
    func dueCheck(now: Date) -> HealthCheck? {
        lock.withLock {
            guard let problem, !checking, now >= nextCheck else { return nil }
            checking = true
            return problem.check
        }
    }

    func passed() {
        let turned = lock.withLock { () -> Bool in
            defer {
                problem = nil
                checking = false
            }
            return problem != nil
        }
        if turned { onChange(.healthy, nil) }
    }

    /// Still failing: the reason may have changed; the next try waits twice as long.
    func failed(reason: String, now: Date) {
        lock.withLock {
            if let current = problem { problem = (reason, current.check) }
            checking = false
            wait = fixedWait ?? min(ceilingSeconds, wait * 2)
            nextCheck = now.addingTimeInterval(wait)
        }
    }

    /// Seconds until the next self-check is due (0 when due or healthy).
    func secondsUntilCheck(now: Date) -> Double {
        lock.withLock { problem == nil ? 0 : max(0, nextCheck.timeIntervalSince(now)) }
    }

    /// A task's sandbox started: this host works, faults start from the base wait again.
    func taskStarted() {
        lock.withLock { streak = 0 }
    }
}
