import Foundation
import Testing
import TestSupport

/// A worker's metrics as an operator reads them (docs/ARCHITECTURE.md §12):
/// Debian's prometheus scrapes a running worker over loopback and its query API
/// returns the series; a port already in use is one line and the worker runs
/// on; a bad operations setting stops the worker with the fix, claiming nothing.
@Suite(.system, .serialized) struct WorkerMetricsCLITests {
    @Test func prometheusScrapesARunningWorkerAndCountsItsTasks() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-metrics-tasks").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        for i in 0..<3 { try GridFixture.taskFile(tasks, "ok\(i)", "echo \(i)") }
        try GridFixture.taskFile(tasks, "bad", "exit 3")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        let ports = FreePort.loopbackPorts(2)
        let (metricsPort, prometheusPort) = (ports[0], ports[1])
        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "w_metrics", "--slots", "2",
                                                   "--metrics-listen", "127.0.0.1:\(metricsPort)", "--set", "poll_seconds=0.5"],
                                                  home: home, log: tasks + "/worker.log")
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
        let prometheus = try OperationsFixture.startPrometheus(port: prometheusPort, target: "127.0.0.1:\(metricsPort)")
        defer { OperationsFixture.stopPrometheus(prometheus) }

        // Prometheus' own view, through its query API, once it has scraped the finished tasks.
        let completed = #"dgrid_worker_tasks_total{job="dgrid",outcome="completed"}"#
        let seen = try GridFaultCLITests.waitUntil(60) { try OperationsFixture.query(prometheusPort, completed).first?.value == 3 }
        let log = (try? String(contentsOfFile: tasks + "/worker.log", encoding: .utf8)) ?? ""
        let counter = try OperationsFixture.query(prometheusPort, completed)
        #expect(seen, "completed counter: \(counter); worker log: \(log)")
        #expect(try OperationsFixture.query(prometheusPort, #"dgrid_worker_tasks_total{outcome="failed"}"#).first?.value == 1)
        #expect(try OperationsFixture.query(prometheusPort, #"up{job="dgrid"}"#).first?.value == 1)
        #expect(try OperationsFixture.query(prometheusPort, "dgrid_worker_slots").first?.value == 2)
        #expect(try OperationsFixture.query(prometheusPort, "dgrid_worker_healthy").first?.value == 1)
        #expect(try OperationsFixture.query(prometheusPort, "dgrid_worker_task_duration_seconds_count").map(\.value).reduce(0, +) == 4)
        #expect(try OperationsFixture.query(prometheusPort, "dgrid_worker_claim_latency_seconds_count").first?.value == 4)
        let pushes = try OperationsFixture.query(prometheusPort, #"dgrid_worker_git_operations_total{operation="push",result="success"}"#)
        #expect((pushes.first?.value ?? 0) >= 8.0, "claims and results are pushes: \(pushes)")
        let info = try OperationsFixture.query(prometheusPort, "dgrid_worker_info").first
        #expect(info?.labels["node_id"] == "w_metrics", "\(String(describing: info))")
        let rss = try OperationsFixture.query(prometheusPort, "process_resident_memory_bytes").first?.value ?? 0
        #expect(rss > 1_048_576.0, "the process's resident memory is exported: \(rss)")
        // The page also answers only what it should, on the running worker.
        let other = try ProcessRunner.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(metricsPort)/"])
        #expect(other.stdout == "404")
        let post = try ProcessRunner.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "http://127.0.0.1:\(metricsPort)/metrics"])
        #expect(post.stdout == "405")
        #expect(worker.isRunning, "the worker serves on")
    }

    /// Another process holds the port: one clear line on stderr, and the worker
    /// runs its task as it would without metrics.
    @Test func aMetricsPortInUseIsOneLineAndTheWorkerStillCompletesItsTask() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-metrics-busy").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try GridFixture.taskFile(tasks, "still-runs", "echo fine")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let (fd, port) = try OperationsFixture.occupiedPort()
        defer { close(fd) }

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "w_busy", "--once", "--metrics-listen", "127.0.0.1:\(port)")
        #expect(worker.status == 0, "\(worker.stderr)")
        let lines = worker.stderr.split(separator: "\n").filter { $0.contains("metrics listener") }
        #expect(lines.count == 1, "\(worker.stderr)")
        let line = String(lines.first ?? "")
        #expect(line.contains("127.0.0.1:\(port)") && line.contains("Address already in use") && line.contains("the worker runs without metrics")
                && line.contains("--metrics-listen"), "\(line)")
        #expect(try GridFixture.mainFiles(repo).contains("tasks/completed/w_busy-still-runs.json"))
        // The other listener still has its port: the worker never took it over.
        var info = stat()
        #expect(fstat(fd, &info) == 0)
    }

    /// Settings that cannot work stop the worker at once (exit 78) with one line
    /// saying what to write instead; nothing is claimed, no secret is printed.
    @Test func badOperationsSettingsStopTheWorkerWithTheFix() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-metrics-bad").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try GridFixture.taskFile(tasks, "untouched", "echo no")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let open = tasks + "/open-secret"
        FileManager.default.createFile(atPath: open, contents: Data((OperationsFixture.secretText + "\n").utf8), attributes: [.posixPermissions: 0o644])
        let short = tasks + "/short-secret"
        FileManager.default.createFile(atPath: short, contents: Data("short\n".utf8), attributes: [.posixPermissions: 0o600])
        let rows: [(args: [String], environment: [String: String], says: String)] = [
            (["--metrics-listen", "localhost:9464"], [:], "names are not resolved"),
            (["--metrics-listen", "127.0.0.1"], [:], "no port"),
            (["--webhook", "http://user:pw@127.0.0.1:1/x"], [:], "user-info"),
            (["--webhook", "gopher://127.0.0.1/x"], [:], "http or https"),
            (["--webhook", "http://127.0.0.1:1/x"], [:], "no secret to sign events with"),
            (["--webhook", "http://127.0.0.1:1/x", "--webhook-secret-file", open], [:], "chmod 0600"),
            (["--webhook", "http://127.0.0.1:1/x", "--webhook-secret-file", short], [:], "at least 16"),
            (["--webhook", "http://127.0.0.1:1/x"], ["DGRID_WEBHOOK_SECRET": "short"], "at least 16"),
        ]
        for row in rows {
            let r = try CLI.run(["worker", "--repo", url, "--node-id", "w_bad", "--once"] + row.args,
                                environment: ["DGRID_HOME": home.path].merging(row.environment) { $1 })
            #expect(r.status == 78, "\(row.args): exit \(r.status) \(r.stderr)")
            #expect(r.stderr.hasPrefix("dgrid: ") && r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(row.says), "\(row.args): \(r.stderr)")
            #expect(!r.stderr.contains(OperationsFixture.secretText) && !r.stderr.contains("pw@"), "\(r.stderr)")
        }
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty, "nothing was claimed")
    }
}
