import Foundation
import Sandbox
import Testing
import TestSupport
@testable import Runner

/// Heartbeats cost O(1) history (issue 10): each beat chained a commit onto
/// `refs/dgrid/nodes/<id>`, ~2,900 a day per node, every one reachable from a
/// ref every worker lists and a new worker fetches. Now the ref holds one
/// orphan commit, replaced by compare-and-swap.
@Suite(.system) struct NodeHeartbeatHistoryTests {
    static func connection(_ url: String, _ node: String, in directory: String, mirror: String? = nil) throws -> GridConnection {
        try GridConnection(settings: GridSettings(repository: url, nodeID: node,
                                                  state: StateDirectory(path: directory + "/state-" + (mirror ?? node))))
    }

    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    /// Many beats from two nodes: one commit per node, with no parent, holding the last beat.
    @Test(arguments: [(LedgerTransport.file, 0), (.gitDaemon, 0)])
    func manyBeatsLeaveOneParentlessCommitPerNode(transport: LedgerTransport, port: Int) throws {
        try transport.withRemote(port: port) { url, bare, directory in
            let a = try Self.connection(url, "node_a", in: directory)
            let b = try Self.connection(url, "node_b", in: directory)
            let beats = 40
            for beat in 0..<beats {
                let now = Self.start.addingTimeInterval(Double(beat) * 30)
                try NodeHeartbeat(connection: a).beat(status: "active", now: now)
                if beat % 2 == 0 { try NodeHeartbeat(connection: b).beat(status: "active", now: now) }
            }
            for node in ["node_a", "node_b"] {
                let ref = "refs/dgrid/nodes/" + node
                #expect(try LedgerFixtures.git(["rev-list", "--count", ref], in: bare) == "1", "\(node): history grew")
                // `rev-list --parents` prints the commit and then its parents: the commit alone.
                let line = try LedgerFixtures.git(["rev-list", "--parents", "-n", "1", ref], in: bare)
                #expect(line.split(separator: " ").count == 1, "\(node): \(line)")
            }
            // Everything a new worker would fetch from the node refs: two commits.
            #expect(try LedgerFixtures.git(["rev-list", "--count", "--glob=refs/dgrid/nodes"], in: bare) == "2")
            let last = try #require(NodeRecord.parse(Array(try LedgerFixtures.git(
                ["cat-file", "-p", "refs/dgrid/nodes/node_a:node.json"], in: bare).utf8)))
            #expect(last.lastHeartbeat == ISOTime.string(Self.start.addingTimeInterval(Double(beats - 1) * 30)))
        }
    }

    /// A claim's whole life — the claim, many lease renewals, a takeover by
    /// another node after expiry, a release — leaves one parentless commit on
    /// `refs/dgrid/claims/<id>`, holding the latest record and the attempt history.
    @Test(arguments: [(LedgerTransport.file, 0), (.gitDaemon, 0)])
    func aClaimsRenewalsTakeoverAndReleaseKeepOneCommit(transport: LedgerTransport, port: Int) throws {
        try transport.withRemote(port: port) { url, bare, directory in
            let a = try Self.connection(url, "node_a", in: directory)
            let b = try Self.connection(url, "node_b", in: directory)
            let ref = "refs/dgrid/claims/job"
            func commits() throws -> (count: String, parents: Int) {
                (try LedgerFixtures.git(["rev-list", "--count", ref], in: bare),
                 try LedgerFixtures.git(["rev-list", "--parents", "-n", "1", ref], in: bare).split(separator: " ").count - 1)
            }
            var held = try #require(try GridClaims(connection: a).claim("job", takingOver: nil, now: Self.start))
            for beat in 1...30 {
                let renewals = try NodeHeartbeat(connection: a).beat(status: "active", renewing: [held],
                                                                     now: Self.start.addingTimeInterval(Double(beat) * 30))
                held = try #require(renewals["job"] ?? nil, "renewal \(beat) was refused")
            }
            #expect(try commits() == ("1", 0), "after 30 renewals")
            // node_a dies; past its lease node_b takes over, then gives the task back.
            let late = Self.start.addingTimeInterval(30 * 30 + a.settings.leaseSeconds + 60)
            // As the picker does: node_b reads the expired claim before taking it over.
            try b.withLedger { (ledger) throws(LedgerError) in try ledger.fetch([ref]) }
            let taken = try #require(try GridClaims(connection: b).claim("job", takingOver: held.commit, now: late))
            #expect(taken.record.attempt == 2)
            #expect(try commits() == ("1", 0), "after the takeover")
            #expect(try GridClaims(connection: b).release(taken, ending: .hostFault, reason: "test", now: late + 1))
            #expect(try commits() == ("1", 0), "after the release")
            let record = try #require(ClaimRecord.parse(Array(try LedgerFixtures.git(["cat-file", "-p", "\(ref):claim.json"], in: bare).utf8)))
            #expect(record.previousAttempts.map(\.nodeID) == ["node_a", "node_b"], "the history is in the record, not the ref's log")
        }
    }

    /// A restarted worker with the same node id (its own mirror, so it does not
    /// know the ref's value): each side's next beat finds the ref moved, lists it
    /// and replaces it. Every beat lands; the ref still holds one commit.
    @Test func aSecondWorkerWithTheSameIDReplacesTheRecordToo() throws {
        try LedgerTransport.file.withRemote(port: 0) { url, bare, directory in
            let first = try Self.connection(url, "node_a", in: directory, mirror: "first")
            let second = try Self.connection(url, "node_a", in: directory, mirror: "second")
            for beat in 0..<6 {
                let now = Self.start.addingTimeInterval(Double(beat))
                try NodeHeartbeat(connection: beat % 2 == 0 ? first : second).beat(status: "active", now: now)
                let record = try #require(NodeRecord.parse(Array(try LedgerFixtures.git(
                    ["cat-file", "-p", "refs/dgrid/nodes/node_a:node.json"], in: bare).utf8)))
                #expect(record.lastHeartbeat == ISOTime.string(now), "beat \(beat) was lost")
            }
            #expect(try LedgerFixtures.git(["rev-list", "--count", "refs/dgrid/nodes/node_a"], in: bare) == "1")
        }
    }

    /// The fold still brings the latest beat into nodes/ on main.
    @Test func theFoldReadsTheReplacedRecord() throws {
        try LedgerTransport.file.withRemote(port: 0) { url, bare, directory in
            let a = try Self.connection(url, "node_a", in: directory)
            #expect(try GridInit(connection: a).run().created)
            for beat in 0..<3 { try NodeHeartbeat(connection: a).beat(status: "active", now: Self.start.addingTimeInterval(Double(beat))) }
            _ = try GridFold(connection: a).run()
            let onMain = try #require(NodeRecord.parse(Array(try LedgerFixtures.git(["show", "main:nodes/node_a.json"], in: bare).utf8)))
            #expect(onMain.lastHeartbeat == ISOTime.string(Self.start.addingTimeInterval(2)))
        }
    }
}
