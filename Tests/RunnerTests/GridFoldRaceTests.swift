import Foundation
import Sandbox
import Synchronization
import Testing
@testable import Runner
import TestSupport

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(1)

/// Two folders racing over `git daemon` (docs/ARCHITECTURE.md §6): main moves only by
/// compare-and-swap from the tip a folder read, so exactly one fold applies;
/// the other finds the work done and changes nothing — no second completed
/// file, no late result, no extra commit.
@Suite(.system) struct GridFoldRaceTests {
    @Test func twoFoldersRacingOneWinsTheOtherIsANoOp() throws {
        try LedgerTransport.gitDaemon.withRemote(port: suitePorts[0]) { url, bare, directory in
            func connection(_ node: String) throws -> GridConnection {
                try GridConnection(settings: GridSettings(repository: url, nodeID: node,
                                                          state: StateDirectory(path: directory + "/state-" + node)))
            }
            let (a, b) = (try connection("node_a"), try connection("node_b"))
            #expect(try GridInit(connection: a).run().created)
            let ids = (0..<10).map { "t\($0)" }
            let files = ids.map { id in (name: id + ".json", bytes: Array("{\"task_id\":\"\(id)\",\"script\":\"true\",\"timeout_seconds\":5}".utf8)) }
            _ = try GridSubmit(connection: a).submit(files, priority: nil, submitter: "test")
            for (index, id) in ids.enumerated() {
                let owner = index % 2 == 0 ? a : b
                let claim = try #require(try GridClaims(connection: owner).claim(id, takingOver: nil, now: Date()))
                let record = ResultRecord(taskID: id, nodeID: owner.settings.nodeID, exitCode: 0, stdout: "ok \(id)\n")
                #expect(try GridResults(connection: owner).publish(record, taskBytes: files[index].bytes, claim: claim.commit))
            }
            let before = try LedgerFixtures.git(["rev-list", "--count", "main"], in: bare)

            // Both read the same tip, then both try to move main.
            let start = DispatchSemaphore(value: 0)
            let outcomes = Mutex<[String: Result<GridFold.Summary, GridError>]>([:])
            let group = DispatchGroup()
            for (name, folder) in [("a", a), ("b", b)] {
                group.enter()
                Thread {
                    start.wait()
                    let outcome = Result { () throws(GridError) in try GridFold(connection: folder).run() }
                    outcomes.withLock { $0[name] = outcome }
                    group.leave()
                }.start()
            }
            start.signal(); start.signal()
            group.wait()
            let summaries = try outcomes.withLock { $0 }.mapValues { try $0.get() }
            #expect(summaries.values.filter(\.mainMoved).count == 1, "\(summaries)")
            #expect(summaries.values.map(\.finished).max() == 10, "\(summaries)")
            #expect(try LedgerFixtures.git(["rev-list", "--count", "main"], in: bare) == String(Int(before)! + 1))

            let tree = try LedgerFixtures.git(["ls-tree", "-r", "--name-only", "main"], in: bare).split(separator: "\n")
            for id in ids {
                #expect(tree.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix("-\(id).json") }.count == 1, "\(id)")
            }
            #expect(!tree.contains { $0.hasPrefix("tasks/late/") || $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") })
            #expect(try LedgerFixtures.git(["for-each-ref", "refs/dgrid/results", "refs/dgrid/claims"], in: bare).isEmpty)

            // And a third fold, later, finds nothing to do.
            let tip = try LedgerFixtures.git(["rev-parse", "main"], in: bare)
            #expect(try GridFold(connection: b).run().mainMoved == false)
            #expect(try LedgerFixtures.git(["rev-parse", "main"], in: bare) == tip)
        }
    }
}
