import Foundation
import Testing
import TestSupport

/// D-GRID's dashboard generator reads a checkout of main: it counts
/// `tasks/{queue,in_progress,completed,failed}/*.json` (one level, no
/// recursion) and reads `nodes/*.json`. A folded main must read right to it
/// mid-run: queued, running, done and failed tasks and the live node.
@Suite(.system, .serialized) struct GridDashboardCLITests {
    /// What D-GRID's generator computes, in its own language, on a clone.
    static let dashboard = """
        import glob, json, os, sys
        os.chdir(sys.argv[1])
        counts = {d: len(glob.glob("tasks/%s/*.json" % d)) for d in ["queue", "in_progress", "completed", "failed"]}
        nodes = [json.load(open(f)) for f in sorted(glob.glob("nodes/*.json"))]
        print(json.dumps({"counts": counts, "nodes": [[n["node_id"], n["status"], n["last_heartbeat"]] for n in nodes]}))
        """

    @Test func dgridsDashboardCountsAFoldedMainMidRun() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-dash").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        // Priorities fix the order one slot takes them in: ok and bad, then slow; two stay queued.
        try GridFixture.taskFile(tasks, "ok", "echo ok", extra: ",\"priority\":\"critical\"")
        try GridFixture.taskFile(tasks, "bad", "exit 1", extra: ",\"priority\":\"critical\"")
        try GridFixture.taskFile(tasks, "slow", "sleep 60", timeout: 90, extra: ",\"priority\":\"high\"")
        try GridFixture.taskFile(tasks, "later1", "true")
        try GridFixture.taskFile(tasks, "later2", "true")
        let submitted = try home.dgrid("submit", "--repo", url, "--flat", tasks)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        #expect(submitted.stdout.contains("tasks/queue/ok.json"), "\(submitted.stdout)")

        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "dash_node", "--slots", "1", "--max-tasks", "3"],
                                                  home: home, log: tasks + "/worker.log")
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() } }
        let running = try GridFaultCLITests.waitUntil(30) {
            try GridFixture.refs(repo, "refs/dgrid/claims").contains("refs/dgrid/claims/slow")
        }
        #expect(running, "\((try? String(contentsOfFile: tasks + "/worker.log", encoding: .utf8)) ?? "")")
        let folded = try home.dgrid("fold", "--repo", url)
        #expect(folded.status == 0, "\(folded.stderr)")

        let clone = tasks + "/clone"
        #expect(try GridFixture.git(["clone", "-q", repo, clone]).status == 0)
        let script = tasks + "/dashboard.py"
        try Self.dashboard.write(toFile: script, atomically: true, encoding: .utf8)
        let read = try ProcessRunner.run("/usr/bin/python3", [script, clone])
        #expect(read.status == 0, "\(read.stderr)")
        let view = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any] ?? [:]
        let counts = view["counts"] as? [String: Int] ?? [:]
        #expect(counts == ["queue": 2, "in_progress": 1, "completed": 1, "failed": 1], "\(view)")
        let nodes = view["nodes"] as? [[String]] ?? []
        #expect(nodes.count == 1 && nodes.first?[0] == "dash_node" && nodes.first?[1] == "active", "\(view)")
        #expect(FileManager.default.fileExists(atPath: clone + "/tasks/in_progress/dash_node-slow.json"))
    }
}
