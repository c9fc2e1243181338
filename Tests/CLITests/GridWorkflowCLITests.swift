import Foundation
import Testing
import TestSupport

/// Workflows end to end (docs/ARCHITECTURE.md §10): `depends_on` enforced by real
/// workers, dependency modes, skips folded transitively, cycles and unknown
/// dependencies refused at submit and by the fold, `/inputs/<dependency>/`.
@Suite(.system, .serialized) struct GridWorkflowCLITests {
    private func record(_ repo: String, _ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
    }

    private struct Node { let state: String; let reason: String?; let mode: String? }

    private func dag(_ home: ImageCLITests.Home, _ url: String) throws -> [String: Node] {
        let report = try home.json("dag", "--repo", url, "--json")
        var nodes: [String: Node] = [:]
        for task in report["tasks"] as? [[String: Any]] ?? [] {
            guard let id = task["id"] as? String else { continue }
            nodes[id] = Node(state: task["state"] as? String ?? "", reason: task["reason"] as? String, mode: task["dependency_mode"] as? String)
        }
        return nodes
    }

    @Test func aPipelineRunsInDependencyOrderWithInputsAndFailuresSkipTheirDependents() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-dag").path
        try GridFixture.taskFile(tasks, "fetch", "echo fetched-42")
        for i in 1...2 {
            try GridFixture.taskFile(tasks, "split\(i)", "read x < /inputs/fetch/stdout; echo \"$x/part\(i)\"; grep -q '\"exit_code\": 0' /inputs/fetch/result.json && echo record-ok",
                                     extra: #","depends_on":["fetch"]"#)
        }
        try GridFixture.taskFile(tasks, "merge", "cat /inputs/split1/stdout /inputs/split2/stdout; ls /inputs; touch /inputs/x 2>/dev/null && echo writable || echo read-only",
                                 extra: #","depends_on":["split1","split2"]"#)
        // What the sandbox's mount table says of /inputs: a tmpfs, its own root — no host path.
        try GridFixture.taskFile(tasks, "probe", "awk '$5 == \"/inputs\" {for (i = 7; $i != \"-\"; i++); print $4, $5, $(i+1), $6}' /proc/self/mountinfo; stat -c '%u %a' /inputs/fetch/stdout",
                                 extra: #","depends_on":["fetch"]"#)
        try GridFixture.taskFile(tasks, "broken", "echo oops >&2; exit 2")
        try GridFixture.taskFile(tasks, "after-broken", "echo must-not-run", extra: #","depends_on":["broken","fetch"]"#)
        try GridFixture.taskFile(tasks, "after-after", "echo must-not-run", extra: #","depends_on":["after-broken"]"#)
        try GridFixture.taskFile(tasks, "report", "cat /inputs/broken/stderr; grep -o '\"exit_code\": [0-9]*' /inputs/broken/result.json",
                                 extra: #","depends_on":["broken","after-broken"],"dependency_mode":"all_finished""#)
        try GridFixture.taskFile(tasks, "either", "ls /inputs", extra: #","depends_on":["broken","fetch"],"dependency_mode":"any_succeeded""#)
        let submitted = try home.dgrid("submit", "--repo", url, tasks)
        #expect(submitted.status == 0, "\(submitted.stderr)")

        // Before any run: what may start, and what waits for what.
        let before = try dag(home, url)
        #expect(before["fetch"]?.state == "ready" && before["broken"]?.state == "ready")
        #expect(before["split1"]?.state == "waiting" && before["split1"]?.reason == "waits for fetch")
        #expect(before["merge"]?.state == "waiting" && before["merge"]?.reason == "waits for split1, split2")
        #expect(before["either"]?.mode == "any_succeeded")
        let text = try home.dgrid("dag", "--repo", url)
        #expect(text.status == 0 && text.stdout.contains("merge") && text.stdout.contains("← split1, split2"), "\(text.stdout)")
        #expect(text.stdout.split(separator: "\n").first?.hasPrefix("broken") == true, "dependencies first: \(text.stdout)")

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wf", "--slots", "2", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let files = try GridFixture.mainFiles(repo)
        for id in ["fetch", "split1", "split2", "merge", "report", "either", "probe"] {
            #expect(files.contains("tasks/completed/wf-\(id).json.log"), "\(id): \(files)")
        }
        #expect(try GridFixture.show(repo, "tasks/completed/wf-split2.json.log").contains(#"fetched-42/part2\nrecord-ok"#))
        let merge = try record(repo, "tasks/completed/wf-merge.json.log")
        #expect(merge["stdout"] as? String == "fetched-42/part1\nrecord-ok\nfetched-42/part2\nrecord-ok\nsplit1\nsplit2\nread-only\n")
        // Each dependent started after its dependencies finished.
        let fetch = try record(repo, "tasks/completed/wf-fetch.json.log"), split1 = try record(repo, "tasks/completed/wf-split1.json.log")
        #expect((fetch["finished_at"] as? String ?? "~") <= (split1["started_at"] as? String ?? ""))
        #expect((split1["finished_at"] as? String ?? "~") <= (merge["started_at"] as? String ?? ""))

        // broken failed; after-broken skipped for it, after-after transitively; report (all_finished) ran and read both.
        #expect(files.contains("tasks/failed/wf-broken.json.log"))
        let skipped = try record(repo, "tasks/failed/wf-after-broken.json.log")
        #expect(skipped["status"] as? String == "skipped")
        #expect(skipped["stderr"] as? String == "dependency broken failed: exit 2\n")
        #expect(skipped["attempt"] as? Int == 0)
        let transitive = try record(repo, "tasks/failed/wf-after-after.json.log")
        #expect(transitive["status"] as? String == "skipped")
        #expect(transitive["stderr"] as? String == "dependency after-broken was skipped (broken failed: exit 2)\n")
        #expect(files.contains("tasks/failed/wf-after-after.json"), "the task file travels with its record")
        let report = try record(repo, "tasks/completed/wf-report.json.log")
        #expect(report["stdout"] as? String == "oops\n\"exit_code\": 2\n")
        // any_succeeded starts on the first success: broken's record is there only if it was folded by then.
        let either = try record(repo, "tasks/completed/wf-either.json.log")["stdout"] as? String ?? ""
        #expect(either == "broken\nfetch\n" || either == "fetch\n", "\(either)")
        let probe = try record(repo, "tasks/completed/wf-probe.json.log")["stdout"] as? String
        #expect(probe?.hasPrefix("/ /inputs tmpfs ro,nosuid,nodev") == true && probe?.hasSuffix("\n0 644\n") == true, "\(probe ?? "")")
        #expect(!files.contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") }, "\(files)")
        #expect(!String(decoding: try Data(contentsOf: URL(fileURLWithPath: tasks + "/after-broken.json")), as: UTF8.self).isEmpty)
        #expect(!(try GridFixture.git(["--git-dir", repo, "log", "--format=%B", "main"]).stdout.contains("must-not-run")))
        let after = try dag(home, url)
        #expect(after["merge"]?.state == "completed" && after["after-broken"]?.state == "skipped" && after["broken"]?.state == "failed")
        // One task's part of the graph: what it depends on and what depends on it, nothing else.
        let focused = try home.json("dag", "--repo", url, "split1", "--json")
        let ids = Set((focused["tasks"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        #expect(ids == ["fetch", "split1", "merge"], "\(ids)")
        let dot = try home.dgrid("dag", "--repo", url, "--dot")
        #expect(dot.status == 0 && dot.stdout.hasPrefix("digraph dgrid {") && dot.stdout.contains("\"split1\" -> \"merge\";"), "\(dot.stdout)")
        #expect(try home.dgrid("dag", "--repo", url, "no-such-task").stderr.contains("not on this grid"))

        let status = try GridFixture.status(home, url)
        #expect(status["completed"] as? Int == 7 && status["failed"] as? Int == 3, "\(status)")
    }

    @Test func submitRefusesCyclesAndUnknownDependenciesAndPushesNothing() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try ImageCLITests.Home()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let before = try GridFixture.git(["--git-dir", repo, "rev-parse", "main"]).stdout

        let cycle = try TempDir.make(prefix: "dgrid-dag-cycle").path
        try GridFixture.taskFile(cycle, "ok", "true")
        try GridFixture.taskFile(cycle, "a", "true", extra: #","depends_on":["b"]"#)
        try GridFixture.taskFile(cycle, "b", "true", extra: #","depends_on":["c"]"#)
        try GridFixture.taskFile(cycle, "c", "true", extra: #","depends_on":["a","ok"]"#)
        let refused = try home.dgrid("submit", "--repo", url, cycle)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("dependency cycle: a → b → c → a") && refused.stderr.contains("nothing was submitted"), "\(refused.stderr)")

        let missing = try TempDir.make(prefix: "dgrid-dag-missing").path
        try GridFixture.taskFile(missing, "needs-ghost", "true", extra: #","depends_on":["ghost"]"#)
        let unknown = try home.dgrid("submit", "--repo", url, missing)
        #expect(unknown.status == 1 && unknown.stderr.contains("ghost") && unknown.stderr.contains("neither in this submission nor on the grid"),
                "\(unknown.stderr)")

        let itself = try TempDir.make(prefix: "dgrid-dag-self").path
        try GridFixture.taskFile(itself, "me", "true", extra: #","depends_on":["me"]"#)
        let own = try home.dgrid("submit", "--repo", url, itself)
        #expect(own.status == 1 && own.stderr.contains("cannot depend on itself"), "\(own.stderr)")

        let mode = try TempDir.make(prefix: "dgrid-dag-mode").path
        try GridFixture.taskFile(mode, "m", "true", extra: #","depends_on":["x"],"dependency_mode":"most""#)
        let badMode = try home.dgrid("submit", "--repo", url, mode)
        #expect(badMode.status == 1 && badMode.stderr.contains("all_succeeded, all_finished, any_succeeded"), "\(badMode.stderr)")
        #expect(try GridFixture.git(["--git-dir", repo, "rev-parse", "main"]).stdout == before, "nothing pushed")

        // A dependency already on the grid is fine; a new task closing a cycle with a queued one is not.
        let first = try TempDir.make(prefix: "dgrid-dag-first").path
        try GridFixture.taskFile(first, "later", "true", extra: #","depends_on":["ok"]"#)
        try GridFixture.taskFile(first, "ok", "true")
        #expect(try home.dgrid("submit", "--repo", url, first).status == 0)
        let closing = try TempDir.make(prefix: "dgrid-dag-closing").path
        try GridFixture.taskFile(closing, "next", "true", extra: #","depends_on":["later"]"#)
        #expect(try home.dgrid("submit", "--repo", url, closing).status == 0)
    }

    /// Tasks pushed by hand that form a cycle or name a task the grid never had
    /// are rejected by the fold with the reason; what depends on them is
    /// skipped; nothing of them runs.
    @Test func handPushedCyclesAndUnknownDependenciesAreRejectedByTheFoldAndNeverRun() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let dir = try TempDir.make(prefix: "dgrid-dag-hand").path
        let marker = "ran-\(UUID().uuidString.prefix(6))"
        try GridFixture.taskFile(dir, "x", "echo \(marker)", extra: #","depends_on":["y"]"#)
        try GridFixture.taskFile(dir, "y", "echo \(marker)", extra: #","depends_on":["z"]"#)
        try GridFixture.taskFile(dir, "z", "echo \(marker)", extra: #","depends_on":["x"]"#)
        try GridFixture.taskFile(dir, "on-cycle", "echo \(marker)", extra: #","depends_on":["x"]"#)
        try GridFixture.taskFile(dir, "orphan", "echo \(marker)", extra: #","depends_on":["never-was"]"#)
        try GridFixture.taskFile(dir, "fine", "echo fine")
        try GridFixture.push(repo, ["x", "y", "z", "on-cycle", "orphan"].map { (dir + "/\($0).json", "tasks/queue/normal/0/\($0).json") }
                             + [(dir + "/fine.json", "tasks/queue/fine.json")])

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wh", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let files = try GridFixture.mainFiles(repo)
        for id in ["x", "y", "z"] {
            let log = try record(repo, "tasks/rejected/\(id).json.log")
            #expect(log["stderr"] as? String == "dependency cycle: x → y → z → x\n", "\(id): \(log)")
            #expect(files.contains("tasks/rejected/\(id).json"))
        }
        #expect(try record(repo, "tasks/rejected/orphan.json.log")["stderr"] as? String
                == "depends on task never-was, which is not on this grid (never submitted, or removed)\n")
        let skipped = try record(repo, "tasks/failed/wh-on-cycle.json.log")
        #expect(skipped["status"] as? String == "skipped")
        #expect((skipped["stderr"] as? String ?? "").hasPrefix("dependency x was rejected: dependency cycle: x → y → z → x"), "\(skipped)")
        #expect(files.contains("tasks/completed/wh-fine.json.log"))
        #expect(!(try GridFixture.git(["--git-dir", repo, "log", "-p", "main"]).stdout.contains("\"stdout\" : \"\(marker)")), "nothing of them ran")
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty)
    }
}
