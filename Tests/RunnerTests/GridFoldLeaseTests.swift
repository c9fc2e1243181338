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
        #expect(try a.acquire(now: start + 5), "the holder renews, until start + 15 s")
        #expect(try !b.acquire(now: start + 14), "still node_a's")
        #expect(try b.acquire(now: start + 16), "expired: node_b takes it")
        #expect(try !a.acquire(now: start + 20), "node_b's until start + 26 s")
        // One commit on the ref, not a history that grows with every interval.
        #expect(try LedgerFixtures.git(["rev-list", "--count", GridFoldLease.refName], in: bare) == "1")
    }
}
