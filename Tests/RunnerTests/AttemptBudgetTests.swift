import Foundation
import Sandbox
import Testing
import TestSupport
@testable import Runner

private func attempts(_ ends: [(AttemptEnd, String)]) -> [AttemptRecord] {
    ends.enumerated().map { index, end in
        AttemptRecord(attempt: index + 1, nodeID: end.1, claimedAt: "2026-12-01T10:00:00Z", endedAt: "2026-12-01T10:01:00Z",
                      end: end.0, reason: "\(end.0.rawValue) on \(end.1)")
    }
}

/// docs/ARCHITECTURE.md §6 "Attempts": which endings count, and when a task is given up.
@Suite(.unit) struct AttemptBudgetTests {
    struct Row: CustomTestStringConvertible, Sendable {
        let name: String
        let maxAttempts: Int
        let ends: [(AttemptEnd, String)]
        let exhausted: Bool
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        Row(name: "first attempt", maxAttempts: 3, ends: [], exhausted: false),
        Row(name: "two lease expiries of three", maxAttempts: 3, ends: [(.leaseExpired, "a"), (.leaseExpired, "b")], exhausted: false),
        Row(name: "three lease expiries of three", maxAttempts: 3,
            ends: [(.leaseExpired, "a"), (.leaseExpired, "b"), (.leaseExpired, "a")], exhausted: true),
        Row(name: "max_attempts 1 after one expiry", maxAttempts: 1, ends: [(.leaseExpired, "a")], exhausted: true),
        Row(name: "one broken host never fails a task", maxAttempts: 3,
            ends: Array(repeating: (.hostFault, "bad"), count: 40), exhausted: false),
        Row(name: "host faults below the cap on two hosts", maxAttempts: 3,
            ends: Array(repeating: (.hostFault, "a"), count: 4) + Array(repeating: (.hostFault, "b"), count: 4), exhausted: false),
        Row(name: "a task that breaks every host ends", maxAttempts: 3,
            ends: Array(repeating: (.hostFault, "a"), count: 5) + Array(repeating: (.hostFault, "b"), count: 4), exhausted: true),
        Row(name: "host faults do not count toward max_attempts", maxAttempts: 3,
            ends: [(.leaseExpired, "a"), (.hostFault, "b"), (.hostFault, "c"), (.leaseExpired, "a")], exhausted: false),
        Row(name: "given back never counts", maxAttempts: 1, ends: Array(repeating: (.givenBack, "a"), count: 50), exhausted: false),
    ]

    @Test(arguments: rows)
    func verdict(_ row: Row) {
        let verdict = AttemptBudget(maxAttempts: row.maxAttempts).verdict(attempts(row.ends))
        if row.exhausted {
            guard case .exhausted(let why) = verdict else {
                Issue.record("\(row.name): still runs")
                return
            }
            #expect(why.contains("gave up after"), "\(why)")
        } else {
            #expect(verdict == .run, "\(row.name)")
        }
    }

    @Test func aTakeoverRecordsHowTheLastAttemptEnded() throws {
        let held = ClaimRecord(taskID: "t", nodeID: "node_a", attempt: 2, claimedAt: "2026-12-01T10:00:00Z",
                               leaseUntil: "2026-12-01T10:01:30Z", previousAttempts: attempts([(.hostFault, "node_x")]))
        let history = held.historyForTakeover
        #expect(history.count == 2 && history[0] == held.previousAttempts[0])
        #expect(history[1].attempt == 2 && history[1].nodeID == "node_a" && history[1].end == .leaseExpired)
        #expect(history[1].reason == "lease expired at 2026-12-01T10:01:30Z (worker node_a stopped renewing)")
        #expect(history[1].endedAt == "2026-12-01T10:01:30Z")
        // A released claim recorded its own end when it was given back: nothing is added.
        var released = held
        released.state = .released
        #expect(released.historyForTakeover == held.previousAttempts)
    }

    @Test func theHistoryIsBoundedAndKeepsEveryCountedAttempt() {
        var list: [AttemptRecord] = attempts([(.leaseExpired, "a"), (.leaseExpired, "b")])
        for index in 0..<(ClaimRecord.maxPreviousAttempts + 20) {
            list = ClaimRecord.appending(AttemptRecord(attempt: 3 + index, nodeID: "c", claimedAt: "", endedAt: "",
                                                       end: index % 2 == 0 ? .givenBack : .hostFault, reason: "r"), to: list)
        }
        #expect(list.count == ClaimRecord.maxPreviousAttempts)
        #expect(list.filter { $0.end == .leaseExpired }.count == 2)
        #expect(list.filter { $0.end == .hostFault }.count == 60)
        // And it still reads back under the claim's read limit.
        let record = ClaimRecord(taskID: "t", nodeID: "c", attempt: 200, claimedAt: "2026-12-01T10:00:00Z",
                                 leaseUntil: "2026-12-01T10:01:30Z", previousAttempts: list.map {
                                     var long = $0
                                     long.reason = String(repeating: "x", count: AttemptRecord.maxReasonLength)
                                     return long
                                 })
        #expect(record.json().count < ClaimRecord.readLimit)
        #expect(ClaimRecord.parse(record.json()) == record)
    }

    @Test func aLongReasonIsCut() {
        let record = AttemptRecord(attempt: 1, nodeID: "a", claimedAt: "", endedAt: "", end: .hostFault,
                                   reason: String(repeating: "y", count: 5000))
        #expect(record.reason.count == AttemptRecord.maxReasonLength)
    }

    /// A writer can push any attempt number, and the next claim adds one: Int.max would trap the
    /// worker taking the task over. A record past the limit is no record (the claim is malformed).
    @Test func anAttemptPastTheLimitIsNoRecord() {
        func record(_ attempt: Int) -> [UInt8] {
            ClaimRecord(taskID: "t1", nodeID: "n1", attempt: attempt, claimedAt: "2026-01-01T00:00:00Z",
                        leaseUntil: "2026-01-01T00:10:00Z").json()
        }
        #expect(ClaimRecord.parse(record(ClaimRecord.attemptLimit))?.attempt == ClaimRecord.attemptLimit)
        #expect(ClaimRecord.parse(record(ClaimRecord.attemptLimit + 1)) == nil)
        #expect(ClaimRecord.parse(record(Int.max)) == nil)
        #expect(ClaimRecord.parse(record(0)) == nil)
    }
}

/// docs/ARCHITECTURE.md §7 "Health": backoff of the self-check, on an injected clock.
@Suite(.unit) struct WorkerHealthTests {
    @Test func unhealthyUntilTheCheckPassesWithBackoff() {
        let health = WorkerHealth(baseSeconds: 5, ceilingSeconds: 40)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(health.isHealthy && health.dueCheck(now: t0) == nil)
        health.fault(reason: "image x missing", check: .image("x"), now: t0)
        #expect(health.state == .unhealthy(reason: "image x missing"))
        #expect(health.dueCheck(now: t0.addingTimeInterval(4.9)) == nil)
        #expect(health.dueCheck(now: t0.addingTimeInterval(5)) == .image("x"))
        #expect(health.dueCheck(now: t0.addingTimeInterval(5)) == nil, "one slot runs the check at a time")
        health.failed(reason: "image x still missing", now: t0.addingTimeInterval(5))
        #expect(health.state == .unhealthy(reason: "image x still missing"))
        #expect(health.dueCheck(now: t0.addingTimeInterval(14.9)) == nil)
        #expect(health.dueCheck(now: t0.addingTimeInterval(15)) == .image("x"))
        for step in 0..<5 { health.failed(reason: "r", now: t0.addingTimeInterval(Double(100 * step))) }
        #expect(health.secondsUntilCheck(now: t0.addingTimeInterval(400)) == 40, "capped at the ceiling")
        _ = health.dueCheck(now: t0.addingTimeInterval(1000))
        health.passed()
        #expect(health.isHealthy && health.state == .healthy)
        // A second fault before any task started waits longer from the start; a started task resets that.
        health.fault(reason: "again", check: .sandbox, now: t0)
        #expect(health.secondsUntilCheck(now: t0) == 10)
        _ = health.dueCheck(now: t0.addingTimeInterval(10))
        health.passed()
        health.taskStarted()
        health.fault(reason: "once more", check: .sandbox, now: t0)
        #expect(health.secondsUntilCheck(now: t0) == 5)
    }
}

/// Whose fault a task that could not start is (docs/ARCHITECTURE.md §7).
@Suite(.unit) struct FaultOwnerTests {
    static let digest = try! Digest(parsing: "sha256:" + String(repeating: "a", count: 64))

    @Test(arguments: [
        (ImageError.invalidReference(text: "UPPER", reason: "case"), FaultOwner.task),
        (.notAllowlisted("evil/image:1"), .task),
        (.pinnedToOtherDigest(name: "a:1", pinned: digest, requested: digest), .task),
        (.invalidConfig(image: digest, field: "User", value: "x", reason: "bad"), .task),
        (.notInStore(reference: "team/tool:1", digest: digest), .host),
        (.notPinned("team/tool:1"), .host),
        (.blobMissing(digest), .host),
        (.layerNotUnpacked(diffID: digest, path: "/var/lib/dgrid/layers/x"), .host),
        (.system(operation: "open", path: "/var/lib/dgrid", errno: ENOSPC), .host),
        (.digestMismatch(expected: digest, actual: digest), .host),
    ])
    func imageErrors(_ error: ImageError, _ owner: FaultOwner) {
        #expect(FaultOwner.of(error) == owner, "\(error)")
    }

    @Test(arguments: [
        (SandboxError.commandNotFound(command: "/bin/sh", errno: ENOENT), FaultOwner.task),
        (.invalidSpec("bad"), .task),
        (.setup(stage: 3, errno: EINVAL), .host),
        (.rootfs(path: "/var/lib/dgrid/run", reason: "Not a directory"), .host),
        (.cgroup(.create(path: "/sys/fs/cgroup/memory/dgrid/x", errno: ENOENT)), .host),
        (.idRangesExhausted(count: 64), .host),
    ])
    func sandboxErrors(_ error: SandboxError, _ owner: FaultOwner) {
        #expect(FaultOwner.of(error) == owner, "\(error)")
    }
}

/// A fresh host without its default image says what fixes it (docs/ARCHITECTURE.md §7).
@Suite(.unit) struct DefaultImageCheckTests {
    @Test func anEmptyStoreNamesTheCommandsThatFixIt() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ImageStore(state: StateDirectory(path: directory + "/state"))

        let busybox = try #require(DefaultImageCheck(store: store, reference: "dgrid/busybox:latest").problem())
        #expect(busybox.reason == "image dgrid/busybox:latest is neither in the local store nor allowed to run")
        #expect(busybox.fix == "images/build-busybox-image.sh /tmp/busybox-oci && dgrid image import /tmp/busybox-oci"
                + " && dgrid image allow dgrid/busybox:latest --approved-by NAME")
        let registry = try #require(DefaultImageCheck(store: store, reference: "127.0.0.1:5000/team/tool:1").problem())
        #expect(registry.fix == "dgrid image allow 127.0.0.1:5000/team/tool:1 --approved-by NAME (it prints the digest D), "
                + "then dgrid image pull 127.0.0.1:5000/team/tool@D")
        let local = try #require(DefaultImageCheck(store: store, reference: "team/tool:1").problem())
        #expect(local.fix.hasPrefix("dgrid image import DIR") && local.fix.hasSuffix("then dgrid image allow team/tool:1 --approved-by NAME"))
        // What goes into the node record names no host path.
        for problem in [busybox, registry, local] { #expect(!problem.published.contains(directory), "\(problem)") }
        let noStore = try #require(DefaultImageCheck(store: nil, reference: "dgrid/busybox:latest").problem())
        #expect(noStore.reason.contains("cannot be opened"))
    }
}
