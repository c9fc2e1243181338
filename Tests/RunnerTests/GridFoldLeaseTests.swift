import Foundation
import Sandbox
import Testing
@testable import Runner

/// One periodic folder per interval: the lease is exclusive, renewable by its
/// holder, and taken over once it runs out.
@Suite struct GridFoldLeaseTests {
    @Test func oneHolderAtATimeAndTakeoverAfterExpiry() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bare = try LedgerFixtures.bareRepository(in: directory)
        func lease(_ node: String) throws -> GridFoldLease {
            var settings = GridSettings(repository: "file://" + bare, nodeID: node,
                                        state: StateDirectory(path: directory + "/state-" + node))
            settings.foldIntervalSeconds = 1
            return GridFoldLease(connection: try GridConnection(settings: settings))
        }
        let (a, b) = (try lease("node_a"), try lease("node_b"))
        #expect(try a.acquire())
        #expect(try !b.acquire(), "held by node_a")
        #expect(try a.acquire(), "the holder renews")
        sleep(3)
        #expect(try b.acquire(), "expired: node_b takes it")
        #expect(try !a.acquire())
        // One commit on the ref, not a history that grows with every interval.
        #expect(try LedgerFixtures.git(["rev-list", "--count", GridFoldLease.refName], in: bare) == "1")
    }
}
