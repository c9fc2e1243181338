import Foundation
import Synchronization
import Testing
@testable import Runner

/// Group commit for a worker's slots: what slots push while another slot's push is on the wire
/// goes together in the next push; a slot alone pushes at once; two entries moving one ref never
/// share a push.
@Suite(.unit) struct PushGroupTests {
    typealias Group = PushGroup<String, String>

    /// A push that holds the first batch until told, and records every batch it was handed.
    final class Wire: Sendable {
        let batches = Mutex<[[String]]>([])
        let firstOnWire = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)

        func push(_ batch: [Group.Entry]) -> [ObjectIdentifier: Result<String, GridError>] {
            let first = batches.withLock { batches in
                batches.append(batch.map(\.build))
                return batches.count == 1
            }
            if first {
                firstOnWire.signal()
                release.wait()
            }
            return Dictionary(uniqueKeysWithValues: batch.map { (ObjectIdentifier($0), .success("pushed \($0.build)")) })
        }
    }

    static func waitUntil(_ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(10)
        while !condition() && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    }

    @Test func entriesMadeWhileAPushIsOnTheWireGoTogetherInTheNext() throws {
        let group = Group()
        let wire = Wire()
        let outcomes = Mutex<[String: String]>([:])
        let done = DispatchGroup()
        func slot(_ name: String, ref: String) {
            done.enter()
            Thread {
                let outcome = group.push(Group.Entry(build: name, names: [ref]), with: wire.push)
                outcomes.withLock { $0[name] = try? outcome.get() }
                done.leave()
            }.start()
        }
        slot("claim a", ref: "refs/dgrid/claims/a")
        wire.firstOnWire.wait()
        slot("result b", ref: "refs/dgrid/results/b")
        slot("claim c", ref: "refs/dgrid/claims/c")
        // Both wait for the push on the wire (the group holds them before any second push).
        Thread.sleep(forTimeInterval: 0.2)
        #expect(wire.batches.withLock { $0.count } == 1, "nothing else pushed while the first is on the wire")
        wire.release.signal()
        #expect(done.wait(timeout: .now() + 10) == .success)
        let batches = wire.batches.withLock { $0 }
        #expect(batches.count == 2, "\(batches)")
        #expect(batches.first == ["claim a"])
        #expect(Set(batches.last ?? []) == ["result b", "claim c"], "the two that waited share one push")
        #expect(outcomes.withLock { $0 } == ["claim a": "pushed claim a", "result b": "pushed result b", "claim c": "pushed claim c"])
    }

    @Test func aSlotAlonePushesAtOnceAndOneRefNeverTwiceInAPush() throws {
        let group = Group()
        let wire = Wire()
        wire.release.signal()
        #expect(try group.push(Group.Entry(build: "alone", names: ["refs/dgrid/claims/x"]), with: wire.push).get() == "pushed alone")

        // Two slots racing for one task while a push is on the wire: their claims go in two pushes
        // (the later one is refused there by compare-and-swap), never twice in one.
        let second = Group()
        let held = Wire()
        let done = DispatchGroup()
        for (name, ref) in [("first", "refs/dgrid/claims/w"), ("other", "refs/dgrid/claims/y"),
                            ("x once", "refs/dgrid/claims/x"), ("x again", "refs/dgrid/claims/x")] {
            done.enter()
            Thread {
                _ = second.push(Group.Entry(build: name, names: [ref]), with: held.push)
                done.leave()
            }.start()
            if name == "first" { held.firstOnWire.wait() }
        }
        Thread.sleep(forTimeInterval: 0.2)
        held.release.signal()
        #expect(done.wait(timeout: .now() + 10) == .success)
        let batches = held.batches.withLock { $0 }
        #expect(batches.count == 3, "\(batches)")
        #expect(batches.allSatisfy { !($0.contains("x once") && $0.contains("x again")) }, "one ref twice in one push: \(batches)")
        #expect(batches.dropFirst().first?.contains("other") == true || batches.last?.contains("other") == true)
    }
}
