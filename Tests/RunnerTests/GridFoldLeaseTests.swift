import Foundation
import Sandbox
import Synchronization
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
        #expect(try a.acquire(now: start + 5), "the holder renews, until start + 15 s")
        #expect(try !b.acquire(now: start + 14), "still node_a's")
        #expect(try b.acquire(now: start + 16), "expired: node_b takes it")
        #expect(try !a.acquire(now: start + 20), "node_b's until start + 26 s")
        // One commit on the ref, not a history that grows with every interval.
        #expect(try LedgerFixtures.git(["rev-list", "--count", GridFoldLease.refName], in: bare) == "1")
    }

    /// A worker that just listed reads the lease from that listing: a lease someone else
    /// holds costs it no listing and no push, and a listing that is behind costs one refused push.
    @Test func theLastListingDecidesWithoutListingAgain() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bare = try LedgerFixtures.bareRepository(in: directory)
        let operations = Mutex<[GitOperationKind]>([])
        func connection(_ node: String, counted: Bool) throws -> GridConnection {
            var settings = GridSettings(repository: "file://" + bare, nodeID: node,
                                        state: StateDirectory(path: directory + "/state-" + node))
            settings.foldIntervalSeconds = 10
            if counted { settings.gitObserver = { kind, _, _ in operations.withLock { $0.append(kind) } } }
            return try GridConnection(settings: settings)
        }
        let (a, b) = (try connection("node_a", counted: true), try connection("node_b", counted: false))
        let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        _ = try a.snapshot()  // no lease yet
        #expect(try GridFoldLease(connection: b).acquire(now: start))
        operations.withLock { $0 = [] }
        #expect(try !GridFoldLease(connection: a).acquire(now: start), "its listing is behind: the create is refused")
        #expect(operations.withLock { $0 } == [.push], "one refused push, no listing")
        _ = try a.snapshot()
        operations.withLock { $0 = [] }
        #expect(try !GridFoldLease(connection: a).acquire(now: start + 1), "node_b's, as the listing shows")
        #expect(operations.withLock { $0 }.allSatisfy { $0 == .fetch }, "seen without a listing or a push")
        #expect(try GridFoldLease(connection: a).acquire(now: start + 16), "expired: node_a takes it from its listing")
        #expect(try !GridFoldLease(connection: b).acquire(now: start + 17), "node_a's now")
        #expect(try LedgerFixtures.git(["rev-list", "--count", GridFoldLease.refName], in: bare) == "1")
    }
}
