import Foundation
import Sandbox
import Testing
@testable import Runner
import TestSupport

/// D-GRID names folded records `<node>-<task>.json` (issue 9, MEDIUM): with
/// tasks `7` and `job-7` and nodes `w1` and `w1-job`, `w1-job-7.json` reads as
/// task `job-7` on `w1` and as task `7` on `w1-job`. These are the orders of
/// events that broke the ledger, run against a real bare repository.
@Suite(.system, .serialized) struct GridLedgerNameTests {
    static func taskFile(_ id: String, _ script: String = "true") -> (name: String, bytes: [UInt8]) {
        (id + ".json", Array("{\"task_id\":\"\(id)\",\"script\":\"\(script)\",\"timeout_seconds\":5}".utf8))
    }

    /// A fresh grid holding `tasks`, and a connection per node (each its own mirror).
    struct Grid {
        let url: String
        let bare: String
        let directory: String

        func connection(_ node: String) throws -> GridConnection {
            try GridConnection(settings: GridSettings(repository: url, nodeID: node,
                                                      state: StateDirectory(path: directory + "/state-" + node)))
        }

        func files() throws -> [String] {
            try LedgerFixtures.git(["ls-tree", "-r", "--name-only", "main"], in: bare).split(separator: "\n").map(String.init)
        }

        func show(_ path: String) throws -> String {
            try LedgerFixtures.git(["show", "main:" + path], in: bare)
        }

        func refs(_ prefix: String) throws -> String {
            try LedgerFixtures.git(["for-each-ref", "--format=%(refname)", prefix], in: bare)
        }

        /// Every folded `.log` names the task and node its file name says: nothing was overwritten by another pair.
        func expectRecordsMatchTheirNames(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: [String]] {
            var byTask: [String: [String]] = [:]
            for path in try files() where path.hasSuffix(".json.log") && !path.hasPrefix("tasks/late/") && !path.hasPrefix("tasks/rejected/") {
                let record = try #require(ResultRecord.parse(Array(try show(path).utf8)), "\(path)", sourceLocation: sourceLocation)
                let name = String(path.split(separator: "/").last!.dropLast(".json.log".count))
                #expect(name == record.nodeID + "-" + record.taskID, "\(path) holds \(record.taskID) on \(record.nodeID)",
                        sourceLocation: sourceLocation)
                let task = try show(String(path.dropLast(".log".count)))
                #expect(task.contains("\"task_id\":\"\(record.taskID)\""), "\(path): the task file beside it is \(task)",
                        sourceLocation: sourceLocation)
                byTask[record.taskID, default: []].append(path)
            }
            return byTask
        }
    }

    static func withGrid(_ transport: LedgerTransport = .file, port: Int = 0, _ body: (Grid) throws -> Void) throws {
        try transport.withRemote(port: port) { url, bare, directory in
            try body(Grid(url: url, bare: bare, directory: directory))
        }
    }

    static func publish(_ connection: GridConnection, _ taskID: String, as node: String? = nil, claim: GitOID?,
                        stdout: String) throws -> [UInt8] {
        let record = ResultRecord(taskID: taskID, nodeID: node ?? connection.settings.nodeID, exitCode: 0, stdout: stdout)
        #expect(try GridResults(connection: connection).publish(record, taskBytes: taskFile(taskID).bytes, claim: claim))
        return record.json()
    }

    /// Task 7 finishing deleted every in_progress name ending in `-7`, among
    /// them `w1-job-7.json`, task job-7's record on w1. w1 then dies (kill -9,
    /// modelled as a lease already over): job-7 was in neither the queue nor
    /// in_progress, so nobody could take it over — lost with harmless names.
    @Test(arguments: [(LedgerTransport.file, 0), (.gitDaemon, 19850)])
    func finishingTask7LeavesJob7sInProgressRecordSoItIsTakenOverAfterItsWorkerDies(transport: LedgerTransport, port: Int) throws {
        try Self.withGrid(transport, port: port) { grid in
            let (w1, w2) = (try grid.connection("w1"), try grid.connection("w2"))
            #expect(try GridInit(connection: w1).run().created)
            _ = try GridSubmit(connection: w1).submit([Self.taskFile("7"), Self.taskFile("job-7")], priority: nil, submitter: "test")

            // w1 claims job-7; its lease is already over: w1 stands for a worker killed -9 while running it.
            _ = try #require(try GridClaims(connection: w1).claim("job-7", takingOver: nil, now: Date(timeIntervalSinceNow: -3600)))
            #expect(try GridFold(connection: w2).run().started == 1)
            #expect(try grid.files().contains("tasks/in_progress/w1-job-7.json"))

            // Task 7 runs on w2 and is folded.
            let seven = try #require(try GridClaims(connection: w2).claim("7", takingOver: nil, now: Date()))
            _ = try Self.publish(w2, "7", claim: seven.commit, stdout: "7 on w2\n")
            #expect(try GridFold(connection: w2).run().finished == 1)
            #expect(try grid.files().contains("tasks/in_progress/w1-job-7.json"), "task 7's fold deleted job-7's record: \((try? grid.files()) ?? [])")

            // w1's lease is over: a worker starting now takes job-7 over.
            let w3 = try grid.connection("w3")
            let pick = try #require(try TaskPicker(connection: w3).next(), "job-7 is neither queued nor in_progress: lost")
            #expect(pick.claim.taskID == "job-7" && pick.claim.record.attempt == 2)
            _ = try Self.publish(w3, "job-7", claim: pick.claim.commit, stdout: "job-7 on w3\n")
            #expect(try GridFold(connection: w3).run().finished == 1)

            let byTask = try grid.expectRecordsMatchTheirNames()
            #expect(byTask == ["7": ["tasks/completed/w2-7.json.log"], "job-7": ["tasks/completed/w3-job-7.json.log"]])
            let left = try grid.files().filter { $0.hasPrefix("tasks/in_progress/") || $0.hasPrefix("tasks/late/") }
            #expect(left == ["tasks/in_progress/.gitkeep"])
            #expect(try grid.refs("refs/dgrid/claims").isEmpty && grid.refs("refs/dgrid/results").isEmpty)
        }
    }

    /// w1 completed job-7 (`completed/w1-job-7.json`); a result for task 7
    /// from node `w1-job` then had the same destination, and the fold wrote it
    /// without looking: w1's record of job-7 was overwritten. A node id with
    /// '-' is now refused wherever a record names it, so the result is dropped
    /// like any forged one and task 7 runs again under a name of its own.
    @Test func aResultForTask7FromNodeW1JobNeverOverwritesW1sRecordOfJob7() throws {
        try Self.withGrid { grid in
            let (w1, w2) = (try grid.connection("w1"), try grid.connection("w2"))
            #expect(try GridInit(connection: w1).run().created)
            _ = try GridSubmit(connection: w1).submit([Self.taskFile("7"), Self.taskFile("job-7")], priority: nil, submitter: "test")
            try NodeHeartbeat(connection: w1).beat(status: "active")

            let job7 = try #require(try GridClaims(connection: w1).claim("job-7", takingOver: nil, now: Date()))
            let job7Record = try Self.publish(w1, "job-7", claim: job7.commit, stdout: "job-7 on w1\n")
            #expect(try GridFold(connection: w1).run().finished == 1)
            #expect(try grid.show("tasks/completed/w1-job-7.json.log") + "\n" == String(decoding: job7Record, as: UTF8.self))

            // A result for 7 that names node w1-job (a worker of that name, or a writer forging one).
            let seven = try #require(try GridClaims(connection: w2).claim("7", takingOver: nil, now: Date()))
            _ = try Self.publish(w2, "7", as: "w1-job", claim: seven.commit, stdout: "7 on w1-job\n")
            _ = try GridFold(connection: w1).run()
            #expect(try grid.show("tasks/completed/w1-job-7.json.log") + "\n" == String(decoding: job7Record, as: UTF8.self),
                    "w1's record of job-7 was overwritten")

            // Task 7 is not lost: it runs again on w2 and lands under its own name.
            let pick = try #require(try TaskPicker(connection: w2).next(), "task 7 can no longer run: \((try? grid.files()) ?? [])")
            #expect(pick.claim.taskID == "7")
            _ = try Self.publish(w2, "7", claim: pick.claim.commit, stdout: "7 on w2\n")
            _ = try GridFold(connection: w2).run()
            let byTask = try grid.expectRecordsMatchTheirNames()
            #expect(byTask == ["7": ["tasks/completed/w2-7.json.log"], "job-7": ["tasks/completed/w1-job-7.json.log"]])
            #expect(try grid.refs("refs/dgrid/claims").isEmpty && grid.refs("refs/dgrid/results").isEmpty)
        }
    }

    /// A repository writer leaves `completed/w1-7.json.log` (no task file
    /// beside it, so main does not show 7 as finished) naming another task.
    /// w1 then finishes 7, whose destination that is: the fold keeps the
    /// writer's file as it is and records 7's result under tasks/late/ with
    /// the reason, and 7 leaves the queue (it ran; it must not run forever).
    @Test func aFoldNeverOverwritesARecordThatNamesAnotherTask() throws {
        try Self.withGrid { grid in
            let w1 = try grid.connection("w1")
            #expect(try GridInit(connection: w1).run().created)
            _ = try GridSubmit(connection: w1).submit([Self.taskFile("7")], priority: nil, submitter: "test")
            let planted = ResultRecord(taskID: "job-7", nodeID: "w1", exitCode: 0, stdout: "planted\n").json()
            let main = try #require(try w1.snapshot().mainTip)
            let moved = try w1.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
                let commit = try ledger.commit(parent: main, changes: [LedgerChange(path: "tasks/completed/w1-7.json.log", content: planted)],
                                               message: "a writer's file")
                return try ledger.updateRef(GridConnection.mainRef, from: main, to: commit)
            }
            #expect(moved == .applied)

            let seven = try #require(try TaskPicker(connection: w1).next())
            let record = try Self.publish(w1, "7", claim: seven.claim.commit, stdout: "7 on w1\n")
            _ = try GridFold(connection: w1).run()

            let files = try grid.files()
            #expect(try grid.show("tasks/completed/w1-7.json.log") + "\n" == String(decoding: planted, as: UTF8.self), "overwritten")
            #expect(!files.contains("tasks/completed/w1-7.json"), "\(files)")
            let late = files.filter { $0.hasPrefix("tasks/late/w1-7-") && $0.hasSuffix(".json.log") }
            #expect(late.count == 1, "\(files)")
            if let late = late.first {
                #expect(try grid.show(late) + "\n" == String(decoding: record, as: UTF8.self), "the result, kept as it was")
                let reason = try grid.show(String(late.dropLast(".json.log".count)) + ".reason")
                #expect(reason.contains("tasks/completed/w1-7.json.log") && reason.contains("job-7"), "\(reason)")
            }
            #expect(!files.contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix("/7.json") || $0.hasPrefix("tasks/in_progress/w1-7") })
            #expect(try TaskPicker(connection: w1).next() == nil, "7 ran once; it must not run again")
            #expect(try grid.refs("refs/dgrid/claims").isEmpty && grid.refs("refs/dgrid/results").isEmpty)
            #expect(try GridStatus(connection: w1).counts().late == 1)
        }
    }
}
