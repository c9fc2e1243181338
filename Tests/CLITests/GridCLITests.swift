import Foundation
import Testing
import TestSupport

/// The grid end to end through the built binaries (docs/ARCHITECTURE.md §6–8): a real
/// repository (file:// and `git daemon` on loopback), real sandboxes, the
/// embedded busybox image. The `git` CLI is used only by the test, to set up
/// and inspect repositories as D-GRID's own tools would.
enum GridFixture {
    static func git(_ args: [String]) throws -> ProcessResult {
        try ProcessRunner.run("/usr/bin/git", args)
    }

    /// An empty bare repository.
    static func bareRepository() throws -> String {
        let path = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-grid-\(UUID().uuidString.prefix(8)).git")
        let r = try git(["init", "--bare", "-q", "--initial-branch=main", path])
        #expect(r.status == 0, "\(r.stderr)")
        return path
    }

    /// A worker's home: its own state directory with the default image imported and allowlisted.
    static func workerHome(requireSignatures: Bool = false, parent: String? = nil) throws -> ImageCLITests.Home {
        let home = try ImageCLITests.Home(requireSignatures: requireSignatures, parent: parent)
        _ = try home.importBusybox()
        let allowed = try home.dgrid("image", "allow", "dgrid/busybox:latest", "--approved-by", "test")
        #expect(allowed.status == 0, "\(allowed.stderr)")
        return home
    }

    static func taskFile(_ dir: String, _ id: String, _ script: String, timeout: Int = 20, extra: String = "") throws {
        let escaped = script.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let json = "{\"task_id\":\"\(id)\",\"script\":\"\(escaped)\",\"timeout_seconds\":\(timeout)\(extra)}"
        try Data(json.utf8).write(to: URL(fileURLWithPath: "\(dir)/\(id).json"))
    }

    /// Pushes files onto main as any repository writer can: (local file, path on main);
    /// an empty local path deletes the file on main.
    static func push(_ repo: String, _ files: [(local: String, path: String)]) throws {
        let work = try TempDir.make(prefix: "dgrid-push").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        #expect(try git(["clone", "-q", "--branch", "main", repo, work + "/w"]).status == 0)
        for file in files {
            let target = work + "/w/" + file.path
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: target)
            if !file.local.isEmpty { try FileManager.default.copyItem(atPath: file.local, toPath: target) }
        }
        for args in [["-C", work + "/w", "add", "-A"], ["-C", work + "/w", "-c", "user.name=w", "-c", "user.email=w@w", "commit", "-q", "-m", "push"],
                     ["-C", work + "/w", "push", "-q", "origin", "main"]] {
            let r = try git(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
    }

    /// Every path on main, as D-GRID's tools see it.
    static func mainFiles(_ repo: String) throws -> [String] {
        let r = try git(["--git-dir", repo, "ls-tree", "-r", "--name-only", "main"])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").map(String.init)
    }

    static func show(_ repo: String, _ path: String) throws -> String {
        try git(["--git-dir", repo, "show", "main:\(path)"]).stdout
    }

    static func refs(_ repo: String, _ prefix: String) throws -> [String] {
        try git(["--git-dir", repo, "for-each-ref", "--format=%(refname)", prefix]).stdout.split(separator: "\n").map(String.init)
    }

    static func status(_ home: ImageCLITests.Home, _ repo: String) throws -> [String: Any] {
        try home.json("status", "--repo", repo, "--json")
    }
}

@Suite(.system, .serialized) struct GridCLITests {
    /// Files a repository writer put in the queue that no worker can read are
    /// set aside with a reason, not silently ignored; D-GRID's own
    /// `high-priority/shard-N/` layout is read and run.
    @Test func unplaceableQueueFilesAreSetAsideAndDGridLayoutsRun() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        // Pushed by hand, as any writer could.
        let work = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-place-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: work) }
        #expect(try GridFixture.git(["clone", "-q", "--branch", "main", repo, work]).status == 0)
        let task = #"{"task_id":"dg","script":"echo from-dgrid-layout","timeout_seconds":10}"#
        let placed: [(String, String)] = [
            ("tasks/queue/high-priority/shard-3/dg.json", task),
            ("tasks/queue/normal/6/bad id.json", task), ("tasks/queue/a/b/c/deep.json", task),
            ("tasks/queue/notes.txt", "hello\n"),
        ]
        for (path, text) in placed {
            let full = work + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        for args in [["add", "-A"], ["-c", "user.name=w", "-c", "user.email=w@x", "commit", "-qm", "by hand"], ["push", "-q", "origin", "main"]] {
            let r = try GridFixture.git(["-C", work] + args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        var status = try GridFixture.status(home, url)
        #expect(status["unplaceable"] as? Int == 3 && status["queued"] as? Int == 1, "every file counted: \(status)")

        #expect(try home.dgrid("worker", "--repo", url, "--node-id", "node_a", "--once").status == 0)
        let files = try GridFixture.mainFiles(repo)
        #expect(files.contains("tasks/completed/node_a-dg.json"), "D-GRID's layout runs: \(files)")
        let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "tasks/completed/node_a-dg.json.log").utf8)) as? [String: Any] ?? [:]
        #expect(record["stdout"] as? String == "from-dgrid-layout\n")
        let aside = files.filter { $0.hasPrefix("tasks/rejected/unplaced/") }
        #expect(aside.filter { $0.hasSuffix(".reason") }.count == 3 && aside.count == 6, "\(aside)")
        #expect(!files.contains { $0.hasPrefix("tasks/queue/") && !$0.hasSuffix(".gitkeep") }, "queue emptied: \(files)")
        let reasons = try aside.filter { $0.hasSuffix(".reason") }.map { try GridFixture.show(repo, $0) }.joined()
        for why in ["is not a valid task id", "at an unknown depth", "is not a task file"] {
            #expect(reasons.contains(why), "\(reasons)")
        }
        // Kept byte for byte.
        let kept = try #require(aside.first { $0.hasSuffix("-notes.txt") })
        #expect(try GridFixture.show(repo, kept) == "hello\n")
        status = try GridFixture.status(home, url)
        #expect(status["unplaceable"] as? Int == 0 && status["set_aside"] as? Int == 3, "\(status)")
        #expect(status["rejected"] as? Int == 0, "set-aside files are no rejected tasks: \(status)")
    }

    /// Fields dgrid does not know are kept and reported: by `status` while the
    /// tasks wait, then in each result record;
    /// `checkpointing` in the improvement report's object form is accepted.
    @Test func unknownFieldsAreReportedAndCheckpointingObjectsAccepted() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-fields").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try GridFixture.taskFile(tasks, "extra", "echo ok",
                                 extra: ",\"gpu\":1,\"team\":\"ml\",\"checkpointing\":{\"interval_seconds\":60}")
        try GridFixture.taskFile(tasks, "extra2", "echo ok", extra: ",\"gpu\":2")
        try GridFixture.taskFile(tasks, "plain", "echo ok")
        let submitted = try home.dgrid("submit", "--repo", url, tasks)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        // `status` shows them while the tasks wait, before any worker reads them.
        let status = try GridFixture.status(home, url)
        let unknown = status["unknown_fields"] as? [[String: Any]] ?? []
        #expect(unknown.map { $0["field"] as? String } == ["gpu", "team"], "\(status)")
        #expect(unknown.map { $0["queued_tasks"] as? Int } == [2, 1], "\(status)")
        // The example is the first carrier by queue path (shards hash the ids).
        let examples = unknown.map { $0["example_task"] as? String ?? "" }
        #expect(examples.count == 2 && ["extra", "extra2"].contains(examples[0]) && examples[1] == "extra", "\(status)")
        #expect(status["unknown_fields_unscanned"] as? Int == 0, "\(status)")
        let human = try home.dgrid("status", "--repo", url)
        #expect(human.stdout.contains(#"unknown task fields, kept and reported in each result: "gpu" (2 tasks, e.g. \#(examples.first ?? "")), "team" (1 task, e.g. extra)"#),
                "\(human.stdout)")
        #expect(try home.dgrid("worker", "--repo", url, "--node-id", "node_a", "--once").status == 0)
        let path = "tasks/completed/node_a-extra.json"
        #expect((try GridFixture.status(home, url)["unknown_fields"] as? [Any])?.isEmpty == true, "the queue is empty")
        let files = try GridFixture.mainFiles(repo)
        try #require(files.contains(path), "\(files)")
        let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path + ".log").utf8)) as? [String: Any] ?? [:]
        #expect(record["unknown_fields"] as? [String] == ["gpu", "team"], "\(record)")
        // The task file keeps them, and the checkpointing object as given.
        let task = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
        #expect(task["gpu"] as? Int == 1 && task["team"] as? String == "ml", "\(task)")
        #expect((task["checkpointing"] as? [String: Any])?["interval_seconds"] as? Int == 60, "\(task)")
    }

    @Test func fileGridRunsDGridTasksAndFoldsThemWhereDGridLooks() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        let initialised = try home.dgrid("init", "--repo", url)
        #expect(initialised.status == 0, "\(initialised.stderr)")
        #expect(try home.dgrid("init", "--repo", url).stdout.contains("already"))

        let tasks = try TempDir.make(prefix: "dgrid-grid-tasks").path
        try GridFixture.taskFile(tasks, "hello", "echo 'Hello D-GRID!'")
        try GridFixture.taskFile(tasks, "fails", "echo bad >&2; exit 3")
        try GridFixture.taskFile(tasks, "slow", "sleep 30", timeout: 1)
        try GridFixture.taskFile(tasks, "urgent", "id -u", extra: ",\"priority\":\"critical\"")
        let submitted = try home.dgrid("submit", "--repo", url, tasks)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        #expect(submitted.stdout.contains("tasks/queue/critical/"))

        // A repository writer adds tasks straight to main in D-GRID's flat layout: one fine, two bad.
        let work = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-grid-clone-\(UUID().uuidString.prefix(8))")
        #expect(try GridFixture.git(["clone", "-q", repo, work]).status == 0)
        try Data(#"{"task_id":"flat","script":"echo flat","timeout_seconds":10}"#.utf8).write(to: URL(fileURLWithPath: work + "/tasks/queue/flat.json"))
        try Data(#"{"task_id":"broken","script":"#.utf8).write(to: URL(fileURLWithPath: work + "/tasks/queue/broken.json"))
        try Data(#"{"task_id":"elsewhere","script":"true","timeout_seconds":10,"image":"alpine:3.19"}"#.utf8).write(to: URL(fileURLWithPath: work + "/tasks/queue/elsewhere.json"))
        for args in [["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "tasks"], ["push", "-q", "origin", "main"]] {
            let r = try GridFixture.git(["-C", work] + args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "node_a", "--slots", "2", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")

        let files = try GridFixture.mainFiles(repo)
        for id in ["hello", "urgent", "flat"] {
            #expect(files.contains("tasks/completed/node_a-\(id).json"), "\(id): \(files)")
            #expect(files.contains("tasks/completed/node_a-\(id).json.log"), "\(id): \(files)")
        }
        for id in ["fails", "slow"] { #expect(files.contains("tasks/failed/node_a-\(id).json.log"), "\(id): \(files)") }
        for id in ["broken", "elsewhere"] { #expect(files.contains("tasks/rejected/\(id).json.log"), "\(id): \(files)") }
        #expect(!files.contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") }, "queue drained: \(files)")
        #expect(!files.contains { $0.hasPrefix("tasks/in_progress/") && $0.hasSuffix(".json") })
        #expect(files.contains("nodes/node_a.json"))
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty)
        #expect(try GridFixture.refs(repo, "refs/dgrid/results").isEmpty)

        let hello = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "tasks/completed/node_a-hello.json.log").utf8)) as? [String: Any] ?? [:]
        #expect(hello["stdout"] as? String == "Hello D-GRID!\n")
        #expect(hello["exit_code"] as? Int == 0)
        #expect(hello["node_id"] as? String == "node_a")
        #expect(hello["status"] as? String == "completed")
        #expect((hello["image_digest"] as? String)?.hasPrefix("sha256:") == true)
        let slow = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "tasks/failed/node_a-slow.json.log").utf8)) as? [String: Any] ?? [:]
        #expect(slow["timed_out"] as? Bool == true)
        #expect(try GridFixture.show(repo, "tasks/rejected/broken.json.log").contains("JSON"))
        #expect(try GridFixture.show(repo, "tasks/rejected/elsewhere.json.log").contains("alpine:3.19"))

        let urgent = try home.dgrid("result", "--repo", url, "urgent")
        #expect(urgent.status == 0)
        #expect(urgent.stdout == "1000\n")
        let failed = try home.dgrid("result", "--repo", url, "fails")
        #expect(failed.status == 1 && failed.stderr.contains("bad"))
        #expect(try home.dgrid("result", "--repo", url, "nothing-here").status == 3)

        let status = try GridFixture.status(home, url)
        #expect(status["completed"] as? Int == 3 && status["failed"] as? Int == 2 && status["rejected"] as? Int == 2)
        #expect(status["queued"] as? Int == 0)
        // Folding again changes nothing.
        let tip = try GridFixture.git(["--git-dir", repo, "rev-parse", "main"]).stdout
        #expect(try home.dgrid("fold", "--repo", url).stdout.contains("nothing to fold"))
        #expect(try GridFixture.git(["--git-dir", repo, "rev-parse", "main"]).stdout == tip)
    }

    @Test func submitIsAllOrNothingWithClearErrors() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try ImageCLITests.Home()
        let before = try home.dgrid("submit", "--repo", url, "/nonexistent.json")
        #expect(before.status == 1 && before.stderr.hasPrefix("dgrid: "))
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-grid-bad").path
        try GridFixture.taskFile(tasks, "good", "true")
        try Data(#"{"task_id":"../etc","script":"true","timeout_seconds":5}"#.utf8).write(to: URL(fileURLWithPath: tasks + "/z.json"))
        let r = try home.dgrid("submit", "--repo", url, tasks)
        #expect(r.status == 1)
        #expect(r.stderr.contains("z.json") && r.stderr.contains("task_id"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!(try GridFixture.mainFiles(repo)).contains { $0.contains("good") }, "nothing submitted")
        try FileManager.default.removeItem(atPath: tasks + "/z.json")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let again = try home.dgrid("submit", "--repo", url, tasks)
        #expect(again.status == 1 && again.stderr.contains("already in the grid"), "\(again.stderr)")
        let uninitialised = try home.dgrid("status", "--repo", "file://" + (try GridFixture.bareRepository()))
        #expect(uninitialised.status == 1 && uninitialised.stderr.contains("dgrid init"))
    }
}
