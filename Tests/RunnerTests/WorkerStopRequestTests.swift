import Dispatch
import Foundation
import Testing
import TestSupport
@testable import Runner

/// How `GridWorker.run` waits (docs/ARCHITECTURE.md §7): for its slots, or for a
/// stop's grace period — and then it returns; nothing here ends the process.
@Suite(.unit) struct WorkerStopRequestTests {
    @Test func slotsFinishingWithoutAStopEndTheWait() {
        let group = DispatchGroup()
        group.enter()
        let request = WorkerStopRequest()
        DispatchQueue.global().async { group.leave() }
        #expect(request.waitForSlots(group))
    }

    @Test func aStopWhoseGraceRunsOutEndsTheWaitWithSlotsBusy() {
        let group = DispatchGroup()
        group.enter()
        defer { group.leave() }
        let request = WorkerStopRequest()
        let started = DispatchTime.now()
        DispatchQueue.global().async { request.request(graceSeconds: 0.05) }
        #expect(!request.waitForSlots(group), "a busy slot outlived the grace period")
        #expect(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds < 5_000_000_000)
    }

    @Test func slotsFinishingWithinTheGraceEndTheWaitCleanly() {
        let group = DispatchGroup()
        group.enter()
        let request = WorkerStopRequest()
        request.request(graceSeconds: 60)
        request.request(graceSeconds: 0)  // a second SIGTERM changes nothing
        DispatchQueue.global().async { group.leave() }
        #expect(request.waitForSlots(group))
    }
}
