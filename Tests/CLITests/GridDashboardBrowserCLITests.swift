import Foundation
import Testing
import TestSupport

/// `dgrid dashboard` (docs/ARCHITECTURE.md §12) looked at in a real browser:
/// a grid mid-run — a task running on a live worker, one completed, one
/// failed, tasks queued by priority, a fan-out of shards waiting on a split —
/// built into a site, served on loopback and loaded by headless Chromium at a
/// phone's width and a desktop's. The numbers the page shows are `dgrid
/// status --json`'s for the same grid, the browser logs no error, the page is
/// no wider than the phone, and the screenshots are kept for a person.
@Suite(.system, .serialized) struct GridDashboardBrowserCLITests {
    @Test func chromiumShowsTheNumbersStatusCountsWithNoConsoleError() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let scratch = try TempDir.make(prefix: "dgrid-dash-browser").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let tasks = scratch + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        // One slot takes ok and bad (critical), then slow (high), and stops: the rest stay queued.
        try GridFixture.taskFile(tasks, "ok", "echo all good", extra: #","priority":"critical""#)
        try GridFixture.taskFile(tasks, "bad", "echo 'it broke' >&2; exit 3", extra: #","priority":"critical""#)
        try GridFixture.taskFile(tasks, "slow", "echo '::progress 40 warming up'; sleep 90", timeout: 120, extra: #","priority":"high""#)
        try GridFixture.taskFile(tasks, "later", "true", extra: #","priority":"low""#)
        // A split, twelve shards and a join: more than eight shards share one box on the page.
        try GridFixture.taskFile(tasks, "split", "true")
        let shards = (1...12).map { "shard-\($0)" }
        for shard in shards { try GridFixture.taskFile(tasks, shard, "true", extra: #","depends_on":["split"]"#) }
        try GridFixture.taskFile(tasks, "join", "true", extra: #","depends_on":[\#(shards.map { "\"\($0)\"" }.joined(separator: ","))]"#)
        let submitted = try home.dgrid("submit", "--repo", url, tasks)
        #expect(submitted.status == 0, "\(submitted.stderr)")

        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "dash_node", "--slots", "1", "--max-tasks", "3"],
                                                  home: home, log: scratch + "/worker.log", environment: ["DGRID_HEARTBEAT_SECONDS": "1"])
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() } }
        let running = try GridFaultCLITests.waitUntil(60) {
            try GridFixture.refs(repo, "refs/dgrid/claims").contains("refs/dgrid/claims/slow")
                && (try GridFixture.status(home, url)["running"] as? [[String: Any]])?.first?["progress"] as? String != nil
        }
        #expect(running, "\((try? String(contentsOfFile: scratch + "/worker.log", encoding: .utf8)) ?? "")")
        #expect(try home.dgrid("fold", "--repo", url).status == 0)

        let status = try GridFixture.status(home, url)
        let site = scratch + "/site"
        let built = try home.dgrid("dashboard", "--repo", url, "--out", site)
        #expect(built.status == 0, "\(built.stderr)")
        #expect(built.stdout.hasPrefix("dashboard of grid g-") && built.stdout.contains("written to \(site)"), "\(built.stdout)")
        #expect(Set((try? FileManager.default.contentsOfDirectory(atPath: site)) ?? []) == [".dgrid-dashboard", "index.html", "dashboard.json"])
        let numbers = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: site + "/dashboard.json"))) as? [String: Any] ?? [:]

        // What status says, in the page's terms: running is a claim held within its lease; folded counts include archived ones.
        let claims = status["running"] as? [[String: Any]] ?? []
        let archived = status["archived"] as? [String: Int] ?? [:]
        let expected: [String: Int] = [
            "queued": status["queued"] as? Int ?? -1,
            "running": claims.filter { $0["state"] as? String == "held" && $0["expired"] as? Bool == false }.count,
            "completed": (status["completed"] as? Int ?? -1) + (archived["completed"] ?? 0),
            "failed": (status["failed"] as? Int ?? -1) + (archived["failed"] ?? 0),
            "nodes": (status["nodes"] as? [String])?.count ?? -1,
        ]
        #expect(expected == ["queued": 15, "running": 1, "completed": 1, "failed": 1, "nodes": 1], "the grid as planned: \(status)")
        for (name, value) in expected { #expect(numbers[name] as? Int == value, "dashboard.json \(name): \(numbers)") }

        let server = try DashboardBrowser.Server.start(site, log: scratch + "/http.log")
        defer { server.stop() }
        let output = try DashboardBrowser.outputDirectory("chromiumShowsTheNumbersStatusCounts")
        let seen = try DashboardBrowser.look(at: server.url, screenshots: output + "/dashboard")
        let metrics = seen["metrics"] as? [String: Any] ?? [:]
        for (name, value) in expected { #expect(metrics[name] as? Int == value, "the page's \(name): \(metrics)") }
        let byPriority = status["queued_by_priority"] as? [String: Int] ?? [:]
        for priority in ["critical", "high", "normal", "low"] {
            #expect(metrics["queued_\(priority)"] as? Int == byPriority[priority] ?? 0, "\(priority): \(metrics) vs \(byPriority)")
        }
        // Slots and health as the node records status reads say them.
        let records = status["node_records"] as? [[String: Any]] ?? []
        #expect(metrics["slots"] as? Int == records.compactMap { $0["slots"] as? Int }.reduce(0, +) && records.count == 1, "\(metrics) vs \(records)")
        #expect(metrics["nodes_unhealthy"] == nil && records.first?["health"] as? String == "healthy" && records.first?["git_circuit"] as? String == "closed")
        // The graph: split, twelve shards, join; five shards in one summary box.
        #expect(metrics["graph_tasks"] as? Int == 14 && metrics["graph_summarized"] as? Int == 5, "\(metrics)")
        // Drawn: split ready; seven shards and the join waiting in boxes of their own; the other five in one box.
        let graph = seen["graph"] as? [String: Any] ?? [:]
        #expect(graph["tasks"] as? [String: Int] == ["ready": 1, "waiting": 8], "\(graph)")
        #expect(graph["summaries"] as? Int == 1 && graph["summary_tasks"] as? Int == 5, "\(graph)")
        #expect((graph["width"] as? Int ?? 0) > 300 && (graph["height"] as? Int ?? 0) > 100, "the SVG is drawn: \(graph)")
        #expect(metrics["graph_ready"] as? Int == 1 && metrics["graph_waiting"] as? Int == 13, "\(metrics)")
        #expect(DashboardBrowser.errors(seen).isEmpty, "console errors: \(seen["console"] ?? [])")
        #expect((seen["title"] as? String)?.hasPrefix("dgrid dashboard: g-") == true, "\(seen["title"] ?? "")")
        #expect(seen["overflow"] as? Int == 0, "wider than a phone by \(seen["overflow"] ?? "?") px")
        let text = seen["text"] as? String ?? ""
        for shown in ["dash_node", "40% warming up", "it broke", "unsigned_run", "Git circuit", "closed", "Dependency graph"] {
            #expect(text.contains(shown), "\(shown) on the page")
        }
        // A completion's output is folded away (a <details> a reader opens): in the page, not in its visible text.
        let page = try String(contentsOfFile: site + "/index.html", encoding: .utf8)
        #expect(!text.contains("all good") && page.contains("all good"))
        for path in seen["screenshots"] as? [String] ?? [] {
            let png = FileManager.default.contents(atPath: path) ?? Data()
            #expect(png.count > 10_000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "\(path): a PNG")
        }
        #expect((seen["screenshots"] as? [String])?.count == 2)
    }
}
