import Foundation
import Testing
@testable import Runner
@testable import SandboxIsolation
import TestSupport

/// The watchdog's clock (docs/ARCHITECTURE.md §12, "Slot watchdog"): a kill
/// once the grace has passed after the timeout, a replacement once it has
/// passed again after the kill, each once; a slot that gets back first is never
/// replaced; a sandbox not started yet is never due.
@Suite(.unit) struct SlotWatchdogTests {
    let start: UInt64 = 1_000_000_000_000
    func seconds(_ s: Double) -> UInt64 { start + UInt64(s * 1e9) }

    /// A watch attached as the runner does; /dev/null stands in for pid 1's pidfd (the kill's signal goes nowhere).
    func started(_ watch: SandboxWatch?) throws -> SandboxWatch {
        let watch = try #require(watch)
        let fd = open("/dev/null", O_RDONLY)
        defer { close(fd) }
        watch.attach(pidfd: fd, group: nil, startedAt: start)
        return watch
    }

    func kinds(_ actions: [SlotWatchdog.Action]) -> [String] {
        actions.map { if case .kill(let run, _) = $0 { "kill \(run.taskID)" } else if case .replace(let run) = $0 { "replace \(run.taskID)" } else { "" } }
    }

    @Test func killedOnceAfterTheGraceThenReplacedOnceAfterAnother() throws {
        let dog = SlotWatchdog(graceSeconds: 2)
        let watch = try started(dog.watch(taskID: "a", slot: 1, timeoutSeconds: 10))
        defer { watch.detach() }
        #expect(dog.due(now: seconds(11.9)).isEmpty)
        let kill = dog.due(now: seconds(12))
        #expect(kinds(kill) == ["kill a"])
        if case .kill(let run, let overdue) = kill.first { #expect(run.slot == 1 && abs(overdue - 2) < 0.01) }
        #expect(dog.due(now: seconds(13.9)).isEmpty, "killed once")
        #expect(kinds(dog.due(now: seconds(14))) == ["replace a"])
        #expect(dog.due(now: seconds(100)).isEmpty, "replaced once")
        // Given back, the task runs again in another slot under the same id: a run of its own.
        let again = try started(dog.watch(taskID: "a", slot: 2, timeoutSeconds: 10))
        defer { again.detach() }
        #expect(!dog.ended(again))
        #expect(dog.ended(watch), "the stuck slot learns it was replaced")
        #expect(!dog.ended(watch))
    }

    @Test func aSlotBackBeforeTheReplacementIsNeverReplaced() throws {
        let dog = SlotWatchdog(graceSeconds: 2)
        let watch = try started(dog.watch(taskID: "b", slot: 0, timeoutSeconds: 1))
        #expect(kinds(dog.due(now: seconds(3))) == ["kill b"])
        watch.detach()
        #expect(!dog.ended(watch))
        #expect(dog.due(now: seconds(100)).isEmpty)
    }

    @Test func notStartedIsNeverDueAndZeroGraceIsNoWatchdog() throws {
        let dog = SlotWatchdog(graceSeconds: 2)
        _ = try #require(dog.watch(taskID: "c", slot: 0, timeoutSeconds: 1))
        #expect(dog.due(now: UInt64.max / 2).isEmpty, "setting up, not running: the supervisor's clock has not started")
        #expect(SlotWatchdog(graceSeconds: 0).watch(taskID: "d", slot: 0, timeoutSeconds: 1) == nil)
    }

    @Test func aDetachedWatchKillsNothing() throws {
        let watch = SandboxWatch()
        #expect(!watch.kill(), "not attached")
        let fd = open("/dev/null", O_RDONLY)
        defer { close(fd) }
        watch.attach(pidfd: fd, group: nil, startedAt: start)
        #expect(watch.startedAt == start)
        watch.detach()
        #expect(!watch.kill() && watch.startedAt == nil)
    }
}
