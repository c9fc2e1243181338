import Foundation
import Sandbox

/// The last line behind the supervisor (docs/ARCHITECTURE.md §12, "Slot
/// watchdog"). The supervisor kills a task at its timeout; should its sandbox
/// still run `grace` later — a process the kill cannot reach (frozen by
/// something on the host, stuck in the kernel), a supervisor that never got
/// back — the watchdog kills it again, through its own handle
/// (`SandboxWatch`). Should the slot still not come back `grace` after that,
/// the slot is replaced: its claim goes back to the grid as a host fault, a new
/// slot thread takes its place, and whatever the stuck one brings back later is
/// dropped. The clock is passed in (`Clock.monotonicNanoseconds`).
final class SlotWatchdog: @unchecked Sendable {
    struct Run {
        let taskID: String
        let slot: Int
        let watch: SandboxWatch
        let timeoutSeconds: Double
        var killedAt: UInt64?
        var replaced = false
    }

    enum Action {
        /// Kill the sandbox again: it has run `overdueSeconds` past its timeout.
        case kill(Run, overdueSeconds: Double)
        /// The kill did not end it: replace the slot (the run is marked replaced).
        case replace(Run)
    }

    private let lock = NSLock()
    /// By the run's own watch: a task given back may run again here, under the same id, while its first run is stuck.
    private var runs: [ObjectIdentifier: Run] = [:]
    let graceNanoseconds: UInt64

    /// `graceSeconds` 0: no watchdog (every `watch` is nil).
    init(graceSeconds: Double) {
        graceNanoseconds = UInt64(max(0, graceSeconds) * 1e9)
    }

    /// The handle for the sandbox `slot` is about to run `taskID` in; nil when the watchdog is off.
    func watch(taskID: String, slot: Int, timeoutSeconds: Int) -> SandboxWatch? {
        guard graceNanoseconds > 0 else { return nil }
        let watch = SandboxWatch()
        lock.withLock { runs[ObjectIdentifier(watch)] = Run(taskID: taskID, slot: slot, watch: watch, timeoutSeconds: Double(timeoutSeconds)) }
        return watch
    }

    /// The slot got back from the run `watch` watched: whether the watchdog replaced
    /// it meanwhile (its claim was given back; what it brings back is dropped).
    func ended(_ watch: SandboxWatch?) -> Bool {
        guard let watch else { return false }
        return lock.withLock { runs.removeValue(forKey: ObjectIdentifier(watch))?.replaced ?? false }
    }

    /// What is due at `now`: each run past its timeout plus the grace is killed
    /// once, and replaced once a grace after that kill. Marked here, under the
    /// lock `ended` takes, so a slot that gets back at that moment either sees
    /// itself replaced or is not replaced.
    func due(now: UInt64) -> [Action] {
        lock.withLock {
            var actions: [Action] = []
            for (id, run) in runs where !run.replaced {
                guard let started = run.watch.startedAt else { continue }
                let deadline = started &+ UInt64(run.timeoutSeconds * 1e9) &+ graceNanoseconds
                if let killedAt = run.killedAt {
                    if now >= killedAt &+ graceNanoseconds {
                        runs[id]?.replaced = true
                        actions.append(.replace(run))
                    }
                } else if now >= deadline {
                    runs[id]?.killedAt = now
                    actions.append(.kill(run, overdueSeconds: Double(now - started) / 1e9 - run.timeoutSeconds))
                }
            }
            return actions
        }
    }
}
