import Foundation
import Sandbox
import Synchronization
import Testing
@testable import Runner
import TestSupport

/// A busy worker's heartbeat rides on its result pushes (`NodeHeartbeat.carried`): the node
/// record moves in the same push as the result, so its beats cost no push of their own. A
/// beat the remote refuses never holds the result back.
@Suite(.unit, .serialized) struct NodeHeartbeatCarriedTests {
    typealias Grid = TaskPickerStaleListingTests.Grid

    static func record(_ bare: String, _ node: String) throws -> NodeRecord {
        try #require(NodeRecord.parse(Array(try LedgerFixtures.git(["cat-file", "-p", "refs/dgrid/nodes/\(node):node.json"], in: bare).utf8)))
    }

    static func result(_ id: String, on node: String) -> ResultRecord {
        ResultRecord(taskID: id, nodeID: node, exitCode: 0, stdout: "ran on \(node)\n")
    }

    /// Another process running as `connection`'s node, with a mirror of its own.
    static func sameNode(as connection: GridConnection, mirror: String) throws -> GridConnection {
        var settings = connection.settings
        settings.state = StateDirectory(path: mirror)
        settings.gitObserver = nil
        return try GridConnection(settings: settings)
    }

    @Test func aResultPushCarriesTheBeatInTheSamePush() throws {
        try TaskPickerStaleListingTests.withGrid { grid, picker, _ in
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            try NodeHeartbeat(connection: picker).beat(status: "active", now: start)
            let pick = try #require(try TaskPicker(connection: picker).next())
            grid.operations.withLock { $0 = [] }
            let landed = Mutex<Bool?>(nil)
            #expect(try GridResults(connection: picker).publish(Self.result(pick.claim.taskID, on: "picker"), taskBytes: pick.taskBytes,
                                                                claim: pick.claim.commit, carrying: NodeHeartbeat(connection: picker),
                                                                beatLanded: { value in landed.withLock { $0 = value } }))
            #expect(grid.operations.withLock { $0 } == [.push], "the result and the beat in one push: \(grid.operations.withLock { $0 })")
            #expect(landed.withLock { $0 } == true)
            let beat = try Self.record(grid.bare, "picker")
            #expect(beat.lastHeartbeat != ISOTime.string(start), "the node record moved")
            #expect(beat.publicKey == (try picker.nodeKey()).publicLine)
            #expect(try LedgerFixtures.git(["rev-list", "--count", "refs/dgrid/nodes/picker"], in: grid.bare) == "1",
                    "still one orphan commit")
            #expect(try LedgerFixtures.git(["rev-parse", "--verify", "-q", GridResults.refName(pick.claim.taskID)], in: grid.bare).count == 40)

            // The fold verifies the carried record's signature and brings it into nodes/ on main.
            _ = try GridFold(connection: picker, workerTrust: WorkerTrust(mode: .off)).run()
            let onMain = try #require(NodeRecord.parse(Array(try LedgerFixtures.git(["show", "main:nodes/picker.json"], in: grid.bare).utf8)))
            #expect(onMain.lastHeartbeat == beat.lastHeartbeat)
        }
    }

    /// Another process with this node id moved the ref: the carried beat is refused, the result
    /// lands, and the thread's next beat lists the ref and lands on top.
    @Test func aRefusedBeatNeverHoldsTheResultBack() throws {
        try TaskPickerStaleListingTests.withGrid { grid, picker, _ in
            try NodeHeartbeat(connection: picker).beat(status: "active")
            let sameNode = try Self.sameNode(as: picker, mirror: grid.directory + "/state-twin")
            let twinBeat = Date(timeIntervalSince1970: 1_800_000_100)
            try NodeHeartbeat(connection: sameNode).beat(status: "active", now: twinBeat)

            let pick = try #require(try TaskPicker(connection: picker).next())
            let landed = Mutex<Bool?>(nil)
            #expect(try GridResults(connection: picker).publish(Self.result(pick.claim.taskID, on: "picker"), taskBytes: pick.taskBytes,
                                                                claim: pick.claim.commit, carrying: NodeHeartbeat(connection: picker),
                                                                beatLanded: { value in landed.withLock { $0 = value } }),
                    "the result lands")
            #expect(landed.withLock { $0 } == false, "the beat was refused")
            #expect(try Self.record(grid.bare, "picker").lastHeartbeat == ISOTime.string(twinBeat), "the twin's record is untouched")

            let later = Date(timeIntervalSince1970: 1_800_000_200)
            try NodeHeartbeat(connection: picker).beat(status: "active", now: later)
            #expect(try Self.record(grid.bare, "picker").lastHeartbeat == ISOTime.string(later))
            #expect(try LedgerFixtures.git(["rev-list", "--count", "refs/dgrid/nodes/picker"], in: grid.bare) == "1")
        }
    }

    /// A process that has not moved or seen its node ref carries nothing: the push holds the result alone.
    @Test func nothingIsCarriedBeforeTheNodeRefIsKnown() throws {
        try TaskPickerStaleListingTests.withGrid { grid, picker, other in
            let claim = try #require(try GridClaims(connection: other).claim("t1", takingOver: nil, now: Date()))
            let landed = Mutex<Bool?>(nil)
            #expect(try GridResults(connection: other).publish(Self.result("t1", on: "other"), taskBytes: [], claim: claim.commit,
                                                               carrying: NodeHeartbeat(connection: other),
                                                               beatLanded: { value in landed.withLock { $0 = value } }))
            #expect(landed.withLock { $0 } == false, "no beat was built")
            #expect(throws: (any Error).self) {
                try LedgerFixtures.git(["rev-parse", "--verify", "refs/dgrid/nodes/other"], in: grid.bare)
            }
        }
    }

    /// The first beat of a worker's start takes the node ref from the listing the start made
    /// (`releaseClaimsOfAnEarlierRun`): a push, no listing of its own.
    @Test func theFirstBeatAfterAListingListsNothing() throws {
        try TaskPickerStaleListingTests.withGrid { grid, picker, _ in
            _ = try picker.snapshot()
            grid.operations.withLock { $0 = [] }
            try NodeHeartbeat(connection: picker).beat(status: "active")
            #expect(grid.operations.withLock { $0 } == [.push], "\(grid.operations.withLock { $0 })")

            // A process after it (its own mirror, same node id) lists, then beats on the record it saw.
            let restarted = try Self.sameNode(as: picker, mirror: grid.directory + "/state-restarted")
            _ = try restarted.snapshot()
            let now = Date(timeIntervalSince1970: 1_800_000_300)
            try NodeHeartbeat(connection: restarted).beat(status: "active", now: now)
            #expect(try Self.record(grid.bare, "picker").lastHeartbeat == ISOTime.string(now))
            #expect(try LedgerFixtures.git(["rev-list", "--count", "refs/dgrid/nodes/picker"], in: grid.bare) == "1")
        }
    }
}
