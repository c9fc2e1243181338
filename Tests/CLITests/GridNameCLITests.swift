import Foundation
import Testing
import TestSupport

/// D-GRID's `<node>-<task>.json` names with tasks `7` and `job-7` and nodes
/// `w1` and `w1-job` (issue 9, MEDIUM), through the real binary: a worker
/// killed -9 between the two tasks' folds, its task taken over, every task
/// completed once and no record overwritten.
@Suite(.system, .serialized) struct GridNameCLITests {
    /// Every path on main that a commit other than the one creating it touched: a record overwritten or deleted.
    static func rewritten(_ repo: String, _ paths: [String]) throws -> [String] {
        try paths.filter { path in
            let commits = try GridFixture.git(["--git-dir", repo, "log", "--format=%H", "main", "--", path]).stdout
            return commits.split(separator: "\n").count != 1
        }
    }

    @Test func tasks7AndJob7OnNodesW1AndW1JobCompleteOnceAcrossAKill9() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let url = "file://" + repo
        let (a, b) = (try GridFixture.workerHome(), try GridFixture.workerHome())
        defer { for home in [a, b] { try? FileManager.default.removeItem(atPath: home.path) } }
        #expect(try a.dgrid("init", "--repo", url).status == 0)
        let tasks = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-names-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try FileManager.default.createDirectory(atPath: tasks + "/first", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tasks + "/second", withIntermediateDirectories: true)
        try GridFixture.taskFile(tasks + "/first", "job-7", "sleep 8; echo job-7 done", timeout: 30)
        try GridFixture.taskFile(tasks + "/second", "7", "echo 7 done")
        #expect(try a.dgrid("submit", "--repo", url, tasks + "/first").status == 0)

        // w1 runs job-7, renewing its 6 s lease every 2 s; a fold moves it to in_progress/w1-job-7.json.
        let w1 = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "w1", "--slots", "1", "--lease", "6"],
                                              home: a, log: tasks + "/w1.log", environment: ["HEARTBEAT_INTERVAL": "2", "PULL_INTERVAL": "0.5"])
        defer { if w1.isRunning { kill(w1.processIdentifier, SIGKILL); w1.waitUntilExit() } }
        let w1Log = { (try? String(contentsOfFile: tasks + "/w1.log", encoding: .utf8)) ?? "" }
        #expect(try GridFaultCLITests.waitUntil(15) { try GridFixture.refs(repo, "refs/dgrid/claims") == ["refs/dgrid/claims/job-7"] },
                "w1 never claimed job-7: \(w1Log())")
        #expect(try b.dgrid("submit", "--repo", url, tasks + "/second").status == 0)
        #expect(try b.dgrid("fold", "--repo", url).status == 0)
        #expect(try GridFixture.mainFiles(repo).contains("tasks/in_progress/w1-job-7.json"))

        // w1-job: its name would make w1-job-7.json read two ways. Refused before it touches the grid.
        let refused = try b.dgrid("worker", "--repo", url, "--node-id", "w1-job", "--once")
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("invalid node id \"w1-job\"") && refused.stderr.contains("w1_job"), "\(refused.stderr)")
        #expect(try GridFixture.refs(repo, "refs/dgrid/nodes") == ["refs/dgrid/nodes/w1"])
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims") == ["refs/dgrid/claims/job-7"])
        #expect(try GridFixture.refs(repo, "refs/dgrid/results").isEmpty)

        // 7 runs on w2 while job-7 is still w1's; folding 7 leaves job-7's record alone.
        let w2 = try b.dgrid("worker", "--repo", url, "--node-id", "w2", "--once")
        #expect(w2.status == 0, "\(w2.stderr)")
        var files = try GridFixture.mainFiles(repo)
        #expect(files.contains("tasks/completed/w2-7.json"), "\(files)")
        #expect(files.contains("tasks/in_progress/w1-job-7.json"), "folding 7 deleted job-7's in_progress record: \(files)")
        #expect(w1.isRunning, "w1 must still be running job-7 here: \(w1Log())")

        // kill -9 w1 mid-task; once its lease runs out, w3 takes job-7 over.
        kill(w1.processIdentifier, SIGKILL)
        w1.waitUntilExit()
        let expired = try GridFaultCLITests.waitUntil(20) {
            let running = try GridFixture.status(b, url)["running"] as? [[String: Any]] ?? []
            return running.contains { $0["task_id"] as? String == "job-7" && $0["expired"] as? Bool == true }
        }
        #expect(expired, "\((try? GridFixture.status(b, url)) ?? [:])")
        let w3 = try b.dgrid("worker", "--repo", url, "--node-id", "w3", "--lease", "30", "--once")
        #expect(w3.status == 0, "\(w3.stderr)")

        files = try GridFixture.mainFiles(repo)
        let records = files.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix(".json.log") }
        #expect(records == ["tasks/completed/w2-7.json.log", "tasks/completed/w3-job-7.json.log"], "\(files)")
        for path in records {
            let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
            let name = String(path.dropFirst("tasks/completed/".count).dropLast(".json.log".count))
            #expect("\(record["node_id"] ?? "")-\(record["task_id"] ?? "")" == name, "\(path): \(record)")
        }
        let jobLog = try GridFixture.show(repo, "tasks/completed/w3-job-7.json.log")
        let jobRecord = (try? JSONSerialization.jsonObject(with: Data(jobLog.utf8))) as? [String: Any] ?? [:]
        #expect(jobRecord["attempt"] as? Int == 2 && jobRecord["stdout"] as? String == "job-7 done\n", "\(jobRecord)")
        #expect(!files.contains { $0.hasPrefix("tasks/late/") || $0.hasPrefix("tasks/failed/") && $0.hasSuffix(".json") })
        #expect(files.filter { $0.hasPrefix("tasks/in_progress/") || $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") }
                    == ["tasks/in_progress/.gitkeep"], "\(files)")
        #expect(try Self.rewritten(repo, files.filter { $0.hasPrefix("tasks/completed/") && $0.contains("-") }).isEmpty)
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty && GridFixture.refs(repo, "refs/dgrid/results").isEmpty)
        #expect(!files.contains("nodes/w1-job.json"))
    }
}
