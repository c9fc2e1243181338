import Foundation
import Testing
import TestSupport

/// `dgrid metrics` on a grid built with known tasks (docs/ARCHITECTURE.md §12):
/// every figure checked against what the test put there and what the records
/// say; the scaling advice checked against its formula; `--watch` sending the
/// scale and node events, signed, to a loopback receiver.
@Suite(.system, .serialized) struct GridMetricsCLITests {
    static func metrics(_ home: ImageCLITests.Home, _ url: String, _ extra: [String] = []) throws -> [String: Any] {
        try home.json(["metrics", "--repo", url, "--json"] + extra)
    }

    @Test func theFiguresMatchAGridBuiltWithKnownTasks() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let dir = try TempDir.make(prefix: "dgrid-grid-metrics").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func submit(_ name: String, _ tasks: [(id: String, script: String, extra: String)]) throws {
            let batch = dir + "/" + name
            try FileManager.default.createDirectory(atPath: batch, withIntermediateDirectories: true)
            for task in tasks { try GridFixture.taskFile(batch, task.id, task.script, timeout: 60, extra: task.extra) }
            let r = try home.dgrid("submit", "--repo", url, batch)
            #expect(r.status == 0, "\(r.stderr)")
        }
        // Three tasks run to the end by one worker, which then stops: two completed, one failed.
        try submit("done", [("a1", "echo one", ""), ("a2", "sleep 0.3", ""), ("a3", "exit 2", "")])
        #expect(try home.dgrid("worker", "--repo", url, "--node-id", "w_done", "--once").status == 0)
        // Then five that wait — the oldest alone, a second earlier — and a critical one a live worker takes.
        try submit("oldest", [("h1", "echo h1", #","priority":"high""#)])
        usleep(1_100_000)
        try submit("rest", [("h2", "echo h2", #","priority":"high""#), ("n1", "echo n1", ""), ("l1", "echo l1", #","priority":"low""#),
                            ("d1", "echo d1", #","depends_on":["n1"]"#), ("r1", "sleep 30", #","priority":"critical""#)])
        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "w_live", "--max-tasks", "1", "--slots", "1",
                                                   "--set", "heartbeat_seconds=1", "--set", "poll_seconds=0.5"],
                                                  home: home, log: dir + "/live.log")
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
        #expect(try GridFaultCLITests.waitUntil(30) { (try Self.metrics(home, url)["running"] as? Int) == 1 },
                "\((try? String(contentsOfFile: dir + "/live.log", encoding: .utf8)) ?? "")")

        let report = try Self.metrics(home, url, ["--target", "60s"])
        let queue = report["queue"] as? [String: Any] ?? [:]
        #expect(queue["waiting"] as? Int == 5 && queue["ready"] as? Int == 4 && queue["waiting_on_dependencies"] as? Int == 1, "\(queue)")
        #expect(queue["by_priority"] as? [String: Int] == ["critical": 0, "high": 2, "normal": 2, "low": 1], "\(queue)")
        #expect(queue["oldest_task"] as? String == "h1" && (queue["oldest_waiting_seconds"] as? Double ?? 0) >= 1, "\(queue)")
        #expect(queue["without_created_at"] as? Int == 0)
        #expect(report["running"] as? Int == 1)
        let throughput = report["throughput"] as? [String: Any] ?? [:]
        #expect(throughput["finished"] as? Int == 3 && throughput["completed"] as? Int == 2 && throughput["failed"] as? Int == 1
                && throughput["rejected"] as? Int == 0, "\(throughput)")
        #expect(abs((throughput["per_minute"] as? Double ?? 0) - 3.0 / 15) < 1e-9, "\(throughput)")
        // The durations are the records' own.
        let recorded = try ["tasks/completed/w_done-a1.json.log", "tasks/completed/w_done-a2.json.log", "tasks/failed/w_done-a3.json.log"].map { path in
            let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
            return Double(record["duration_ms"] as? Int ?? -1) / 1000
        }
        let durations = report["durations"] as? [String: Any] ?? [:]
        let mean = recorded.reduce(0, +) / 3
        #expect(durations["source"] as? String == "window" && durations["samples"] as? Int == 3, "\(durations)")
        #expect(abs((durations["mean_seconds"] as? Double ?? -1) - mean) < 1e-6, "\(durations) vs \(recorded)")
        #expect(durations["p90_seconds"] as? Double == recorded.max(), "\(durations)")
        let nodes = report["nodes"] as? [String: Any] ?? [:]
        #expect(nodes["live"] as? Int == 1 && nodes["offline"] as? Int == 1 && nodes["unhealthy"] as? Int == 0 && nodes["live_slots"] as? Int == 1, "\(nodes)")
        let states = Dictionary(uniqueKeysWithValues: (nodes["records"] as? [[String: Any]] ?? []).map { ($0["node_id"] as? String ?? "", $0["state"] as? String ?? "") })
        #expect(states == ["w_done": "offline", "w_live": "live"], "\(states)")
        let principals = report["principals"] as? [[String: Any]] ?? []
        #expect(principals.count == 1 && principals.first?["principal"] as? String == "(unsigned)" && principals.first?["running"] as? Int == 1
                && principals.first?["queued"] as? Int == 5 && principals.first?["started_last_hour"] as? Int == 4, "\(principals)")

        // The advice, recomputed from its own inputs with the formula it states.
        let scaling = report["scaling"] as? [String: Any] ?? [:]
        func advice(_ scaling: [String: Any], min: Int = 0) -> Int {
            let perSlot = max(1, Int(((scaling["target_seconds"] as? Double ?? 0) / (scaling["mean_duration_seconds"] as? Double ?? 1)).rounded(.down)))
            let tasks = (scaling["waiting"] as? Int ?? 0) + (scaling["running"] as? Int ?? 0)
            let slots = (tasks + perSlot - 1) / perSlot
            return max(min, Int((Double(slots) / (scaling["slots_per_worker"] as? Double ?? 1)).rounded(.up)))
        }
        #expect(scaling["waiting"] as? Int == 5 && scaling["running"] as? Int == 1 && scaling["target_seconds"] as? Double == 60, "\(scaling)")
        #expect(abs((scaling["mean_duration_seconds"] as? Double ?? 0) - mean) < 1e-6 && scaling["slots_per_worker"] as? Double == 1)
        #expect(scaling["workers_wanted"] as? Int == advice(scaling) && scaling["workers_live"] as? Int == 1, "\(scaling)")
        #expect(scaling["action"] as? String == "hold" && (scaling["formula"] as? String)?.hasPrefix("workers_wanted = ") == true, "\(scaling)")
        let floor = try Self.metrics(home, url, ["--min-workers", "3"])["scaling"] as? [String: Any] ?? [:]
        #expect(floor["workers_wanted"] as? Int == 3 && floor["action"] as? String == "scale_up" && floor["delta"] as? Int == 2, "\(floor)")
        // Tasks longer than the target: each needs a slot of its own.
        let long = try Self.metrics(home, url, ["--target", "0.01"])["scaling"] as? [String: Any] ?? [:]
        #expect(long["tasks_per_slot"] as? Int == 1 && long["workers_wanted"] as? Int == 6, "\(long)")
        // Nothing finished in a window this short: the advice uses every record on main, and says so.
        let history = try Self.metrics(home, url, ["--window", "0.001"])["durations"] as? [String: Any] ?? [:]
        #expect(history["source"] as? String == "history" && history["samples"] as? Int == 3, "\(history)")

        // The Prometheus form carries the same figures.
        let text = try home.dgrid("metrics", "--repo", url, "--prometheus", "--target", "60s")
        #expect(text.status == 0, "\(text.stderr)")
        for line in ["dgrid_grid_waiting_tasks{priority=\"high\"} 2.0", "dgrid_grid_waiting_tasks{priority=\"critical\"} 0.0",
                     "dgrid_grid_ready_tasks 4.0", "dgrid_grid_running_tasks 1.0", "dgrid_grid_finished_tasks{status=\"failed\"} 1.0",
                     "dgrid_grid_nodes{state=\"offline\"} 1.0", "dgrid_grid_nodes{state=\"live\"} 1.0", "dgrid_grid_live_slots 1.0",
                     "dgrid_grid_workers_wanted \(Double(advice(scaling)))", "dgrid_grid_principal_queued_tasks{principal=\"(unsigned)\"} 5.0",
                     "# TYPE dgrid_grid_throughput_tasks_per_minute gauge"] {
            #expect(text.stdout.contains(line), "\(line) in:\n\(text.stdout)")
        }
        let plain = try home.dgrid("metrics", "--repo", url)
        #expect(plain.status == 0 && plain.stdout.contains("waiting 5 (high 2, normal 2, low 1), ready 4, on dependencies 1")
                && plain.stdout.contains("running 1") && plain.stdout.contains("scaling: hold"), "\(plain.stdout)")
    }

    @Test func badFlagsAreRefusedBeforeTheGridIsRead() throws {
        let home = try GridFixture.workerHome()
        let rows: [([String], String)] = [
            (["--webhook", "http://127.0.0.1:1/x"], "--webhook needs --watch"),
            (["--json", "--prometheus"], "choose one"),
            (["--target", "soon"], "--target"),
            (["--window", "0"], "--window"),
            (["--watch", "--prometheus"], "--prometheus prints one report"),
            (["--max-workers", "0"], "--max-workers"),
            (["--watch", "--webhook", "http://u:p@127.0.0.1:1/x"], "user-info"),
        ]
        for (args, says) in rows {
            let r = try home.dgrid(["metrics", "--repo", "file:///nonexistent-grid"] + args)
            #expect(r.status != 0 && r.stderr.contains(says), "\(args): \(r.stderr)")
        }
        // A watch with a webhook and no secret stops before it starts.
        let r = try home.dgrid("metrics", "--repo", "file:///nonexistent-grid", "--watch", "--webhook", "http://127.0.0.1:1/x")
        #expect(r.status == 1 && r.stderr.contains("no secret to sign events with"), "\(r.stderr)")
    }

    /// `--watch` tells an autoscaler once per decision and says when a node dies:
    /// scale.up while work waits for no worker, nothing while a worker holds it,
    /// node.offline and scale.up again once that worker is killed.
    @Test func watchSendsScaleAndNodeEventsSigned() throws {
        let receiver = try OperationsFixture.receiver()
        defer { receiver.stop() }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let dir = try TempDir.make(prefix: "dgrid-watch").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try GridFixture.taskFile(dir, "long", "sleep 60", timeout: 120)
        #expect(try home.dgrid("submit", "--repo", url, dir).status == 0)

        let watch = try GridFaultCLITests.launch(["metrics", "--repo", url, "--watch", "--json", "--interval", "1", "--offline-after", "3s",
                                                  "--webhook", receiver.url, "--webhook-secret-file", receiver.secretFile],
                                                 home: home, log: dir + "/watch.log")
        defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL) } }
        #expect(GridFaultCLITests.waitUntil(20) { receiver.bodies("scale.up").count == 1 }, "\(receiver.requests)")
        let first = try #require(receiver.bodies("scale.up").first)
        let data = first["data"] as? [String: Any] ?? [:]
        #expect(data["workers_wanted"] as? Int == 1 && data["workers_live"] as? Int == 0 && data["waiting"] as? Int == 1, "\(data)")
        #expect((first["source"] as? [String: Any])?["kind"] as? String == "metrics")

        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "w_watched", "--set", "heartbeat_seconds=1",
                                                   "--set", "poll_seconds=0.5"], home: home, log: dir + "/worker.log")
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
        // Held: one worker, one task — the watch prints rounds and sends nothing new.
        #expect(GridFaultCLITests.waitUntil(30) {
            ((try? String(contentsOfFile: dir + "/watch.log", encoding: .utf8)) ?? "").contains(#""action":"hold""#)
        }, "\((try? String(contentsOfFile: dir + "/watch.log", encoding: .utf8)) ?? "")")
        #expect(receiver.bodies("scale.up").count == 1)

        kill(worker.processIdentifier, SIGKILL)
        #expect(GridFaultCLITests.waitUntil(30) { !receiver.bodies("node.offline").isEmpty && receiver.bodies("scale.up").count == 2 },
                "\(receiver.requests)")
        let offline = try #require(receiver.bodies("node.offline").first)
        #expect((offline["data"] as? [String: Any])?["node_id"] as? String == "w_watched", "\(offline)")
        #expect(receiver.requests.allSatisfy { $0["signature_ok"] as? Bool == true }, "\(receiver.requests)")
        #expect(receiver.bodies("scale.down").isEmpty && receiver.bodies("node.unhealthy").isEmpty)
        // Every round was one JSON object on one line.
        let lines = ((try? String(contentsOfFile: dir + "/watch.log", encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count >= 3 && lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
    }
}
