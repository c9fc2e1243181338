import Foundation
import Sandbox
import Testing
@testable import Runner
import TestSupport

/// One periodic folder per interval: the lease is exclusive, renewable by its
/// holder, and taken over once it runs out.
@Suite(.unit) struct GridFoldLeaseTests {
    @Test func oneHolderAtATimeAndTakeoverAfterExpiry() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bare = try LedgerFixtures.bareRepository(in: directory)
        func lease(_ node: String) throws -> GridFoldLease {
            var settings = GridSettings(repository: "file://" + bare, nodeID: node,
                                        state: StateDirectory(path: directory + "/state-" + node))
            settings.foldIntervalSeconds = 10
            return GridFoldLease(connection: try GridConnection(settings: settings))
        }
        let (a, b) = (try lease("node_a"), try lease("node_b"))
        // The clock is injected (whole seconds: lease times are stored to the second);
        // the interval is 10 s and the test never waits for it.
        let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        #expect(try a.acquire(now: start))
        #expect(try !b.acquire(now: start), "held by node_a")
        // A lease runs two intervals (20 s), renewed by its holder every interval.
        #expect(try a.acquire(now: start + 5), "the holder renews, until start + 25 s")
        #expect(try !b.acquire(now: start + 24), "still node_a's")
        #expect(try b.acquire(now: start + 26), "expired: node_b takes it")
        #expect(try !a.acquire(now: start + 30), "node_b's until start + 46 s")
        // One commit on the ref, not a history that grows with every interval.
        #expect(try LedgerFixtures.git(["rev-list", "--count", GridFoldLease.refName], in: bare) == "1")
    }

    /// A worker that just listed reads the lease from that listing: a lease someone else
    /// holds costs it no listing and no push, and a listing that is behind costs one refused push.
    @Test func theLastListingDecidesWithoutListingAgain() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bare = try LedgerFixtures.bareRepository(in: directory)
        let grid = TaskPickerStaleListingTests.Grid(url: "file://" + bare, bare: bare, directory: directory, foldIntervalSeconds: 10)
        let (a, b) = (try grid.connection("node_a", counted: true), try grid.connection("node_b"))
        let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        _ = try a.snapshot()  // no lease yet
        #expect(try GridFoldLease(connection: b).acquire(now: start))
        grid.operations.withLock { $0 = [] }
        #expect(try !GridFoldLease(connection: a).acquire(now: start), "its listing is behind: the create is refused")
        #expect(grid.operations.withLock { $0 } == [.push], "one refused push, no listing")
        _ = try a.snapshot()
        grid.operations.withLock { $0 = [] }
        #expect(try !GridFoldLease(connection: a).acquire(now: start + 1), "node_b's, as the listing shows")
        #expect(grid.operations.withLock { $0 }.allSatisfy { $0 == .fetch }, "seen without a listing or a push (the first lease a process sees is read)")
        // node_b renews (a new commit); a lease commit listed for less than an interval is held: not even read.
        #expect(try GridFoldLease(connection: b).acquire(now: start + 2))
        _ = try a.snapshot()
        grid.operations.withLock { $0 = [] }
        #expect(try !GridFoldLease(connection: a).acquire(now: start + 3), "node_b's renewed lease")
        #expect(grid.operations.withLock { $0 }.isEmpty, "no listing, fetch or push")
        #expect(try GridFoldLease(connection: a).acquire(now: start + 26), "expired: node_a takes it from its listing")
        #expect(try !GridFoldLease(connection: b).acquire(now: start + 27), "node_a's now")
        #expect(try LedgerFixtures.git(["rev-list", "--count", GridFoldLease.refName], in: bare) == "1")
    }

    /// A long-running worker counts the first lease it sees as renewed just then: held without a
    /// read (at a hundred workers' start each read it once). Still the same commit two intervals
    /// on, it is read and, run out, taken.
    @Test func aLongRunningWorkerHoldsTheFirstLeaseItSeesWithoutReadingIt() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bare = try LedgerFixtures.bareRepository(in: directory)
        let grid = TaskPickerStaleListingTests.Grid(url: "file://" + bare, bare: bare, directory: directory, foldIntervalSeconds: 10)
        let (a, b) = (try grid.connection("node_a", counted: true), try grid.connection("node_b"))
        let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        #expect(try GridFoldLease(connection: b).acquire(now: start))
        _ = try a.snapshot()
        grid.operations.withLock { $0 = [] }
        #expect(try !GridFoldLease(connection: a).acquire(now: start + 1, readingAnUnseenLease: false), "node_b's, first seen now")
        #expect(grid.operations.withLock { $0 }.isEmpty, "no listing, fetch or push: \(grid.operations.withLock { $0 })")
        #expect(try !GridFoldLease(connection: a).acquire(now: start + 20, readingAnUnseenLease: false), "seen for less than two intervals")
        #expect(grid.operations.withLock { $0 }.isEmpty)
        #expect(try GridFoldLease(connection: a).acquire(now: start + 22, readingAnUnseenLease: false),
                "unchanged for two intervals: read, run out at start + 20 s, taken")
        #expect(grid.operations.withLock { $0 }.contains(.push))
    }

    /// Anyone who can push can write the lease ref. A lease dated a year ahead, a lease.json that
    /// does not parse, or a blob where the commit should be would each stop every worker's
    /// scheduled fold for good if it were believed: none of them holds the lease, and the
    /// compare-and-swap replaces it with one commit.
    @Test func aWritersLeaseOrObjectHoldsNoFoldBack() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bare = try LedgerFixtures.bareRepository(in: directory)
        var settings = GridSettings(repository: "file://" + bare, nodeID: "node_a", state: StateDirectory(path: directory + "/state"))
        settings.foldIntervalSeconds = 10
        let lease = GridFoldLease(connection: try GridConnection(settings: settings))
        let writer = try LedgerFixtures.ledger("file://" + bare, in: directory, name: "writer")
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        func plant(_ bytes: [UInt8]) throws {
            let commit = try writer.commit(parent: nil, changes: [LedgerChange(path: "lease.json", content: bytes)], message: "forged")
            try LedgerFixtures.git(["update-ref", "-d", GridFoldLease.refName], in: bare)
            #expect(try writer.createRef(GridFoldLease.refName, target: commit) == .applied)
        }
        let yearAhead = ClaimRecord(taskID: "fold", nodeID: "mallory", attempt: 1, claimedAt: ISOTime.string(now),
                                    leaseUntil: ISOTime.string(now.addingTimeInterval(365 * 86_400)))
        let forgedAttempts = ClaimRecord(taskID: "fold", nodeID: "mallory", attempt: Int.max, claimedAt: ISOTime.string(now),
                                         leaseUntil: ISOTime.string(now.addingTimeInterval(30)))
        let cases: [(String, () throws -> Void)] = [
            ("a lease a year ahead", { try plant(yearAhead.json()) }),
            ("an attempt number past the limit", { try plant(forgedAttempts.json()) }),
            ("a lease.json that is no record", { try plant(Array("not json".utf8)) }),
            ("a blob at the ref", {
                try "junk".write(toFile: directory + "/junk", atomically: true, encoding: .utf8)
                let blob = try LedgerFixtures.git(["hash-object", "-w", directory + "/junk"], in: bare)
                try LedgerFixtures.git(["update-ref", GridFoldLease.refName, blob], in: bare)
            }),
        ]
        for (what, planted) in cases {
            try planted()
            #expect(try lease.acquire(now: now), "\(what) held the lease")
            let tip = try LedgerFixtures.git(["cat-file", "-t", GridFoldLease.refName], in: bare)
            #expect(tip.contains("commit"), "\(what): \(tip)")
            #expect(try LedgerFixtures.git(["rev-list", "--count", GridFoldLease.refName], in: bare) == "1", "\(what)")
        }
        // A lease held for its interval still holds.
        let fair = ClaimRecord(taskID: "fold", nodeID: "node_b", attempt: 3, claimedAt: ISOTime.string(now),
                               leaseUntil: ISOTime.string(now.addingTimeInterval(600)))
        try plant(fair.json())
        #expect(try !lease.acquire(now: now), "node_b's lease for ten minutes is honoured")
    }
}

/// The fold lease over `git daemon`: a refused push was shown the lease that beat it.
@Suite(.system) struct GridFoldLeaseAdvertisedTests {
    /// At a fleet's start every worker but one loses the race for the lease. The refused push was
    /// shown the winner's commit, written just now by another worker: it is held without being
    /// read (before, each loser fetched it once, a hundred reads at a hundred workers' start).
    @Test func aLeaseSeenBeatingOurPushIsHeldWithoutReadingIt() throws {
        try LedgerTransport.gitDaemon.withRemote(port: 0) { url, bare, directory in
            let grid = TaskPickerStaleListingTests.Grid(url: url, bare: bare, directory: directory, foldIntervalSeconds: 10)
            let (a, b) = (try grid.connection("node_a", counted: true), try grid.connection("node_b"))
            #expect(try GridInit(connection: b).run().created)
            let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
            _ = try a.snapshot()  // no lease yet
            #expect(try GridFoldLease(connection: b).acquire(now: start))
            #expect(try !GridFoldLease(connection: a).acquire(now: start), "its listing is behind: the create is refused")
            _ = try a.snapshot()
            grid.operations.withLock { $0 = [] }
            #expect(try !GridFoldLease(connection: a).acquire(now: start + 1), "node_b's")
            #expect(grid.operations.withLock { $0 }.isEmpty, "seen beating the push: not read \(grid.operations.withLock { $0 })")
            #expect(try GridFoldLease(connection: a).acquire(now: start + 22), "expired: node_a takes it")
        }
    }
}
