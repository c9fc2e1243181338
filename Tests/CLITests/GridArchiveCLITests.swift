import Foundation
import Testing
import TestSupport

/// Archival, compaction and paging end to end (docs/ARCHITECTURE.md §10):
/// records leave main's folders for day bundles and stay findable, finished and
/// replay-proof; a corrupt bundle is one clear line and breaks nothing else;
/// compaction under concurrent submitters loses nothing.
@Suite(.system, .serialized) struct GridArchiveCLITests {
    private func git(_ args: String...) throws -> ProcessResult { try GridFixture.git(args) }

    /// A grid with t1 (completed, "one"), t2 (failed, exit 3), run by node `ar`.
    private func finishedGrid() throws -> (repo: String, url: String, home: ImageCLITests.Home) {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-arch").path
        try GridFixture.taskFile(tasks, "t1", "echo one")
        try GridFixture.taskFile(tasks, "t2", "echo two >&2; exit 3")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "ar", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        return (repo, url, home)
    }

    @Test func archivedRecordsLeaveTheFoldersAndStayFindableFinishedAndReplayProof() throws {
        let (repo, url, home) = try finishedGrid()
        #expect(try GridFixture.mainFiles(repo).contains("tasks/completed/ar-t1.json.log"))

        // Younger than the cutoff: nothing moves.
        let young = try home.dgrid("archive", "--repo", url, "--older-than", "1h")
        #expect(young.status == 0 && young.stdout.contains("nothing to archive") && young.stdout.contains("2 newer left in place"), "\(young.stdout)\(young.stderr)")
        let bad = try home.dgrid("archive", "--repo", url, "--older-than", "a week")
        #expect(bad.status != 0 && bad.stderr.contains("is not an age"), "\(bad.stderr)")

        let archived = try home.dgrid("archive", "--repo", url, "--older-than", "0s")
        #expect(archived.status == 0 && archived.stdout.contains("archived 2 tasks into 1 bundle"), "\(archived.stdout)\(archived.stderr)")
        let files = try GridFixture.mainFiles(repo)
        #expect(!files.contains { $0.hasPrefix("tasks/completed/ar-") || $0.hasPrefix("tasks/failed/ar-") }, "\(files)")
        let bundles = files.filter { $0.hasPrefix("archive/bundles/") }
        #expect(bundles.count == 1 && bundles[0].hasSuffix("-1.tar.gz"), "\(files)")
        #expect(files.filter { $0.hasPrefix("archive/index/") && $0.hasSuffix(".tsv") }.count >= 1)
        // An ordinary tar.gz: what an operator's tar lists.
        let listing = try ProcessRunner.run("/bin/sh", ["-c", "git --git-dir '\(repo)' show 'main:\(bundles[0])' | tar tzf -"])
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(Set(listing.stdout.split(separator: "\n").map(String.init)).isSuperset(of: [
            "tasks/completed/ar-t1.json", "tasks/completed/ar-t1.json.log", "tasks/failed/ar-t2.json", "tasks/failed/ar-t2.json.log"]),
                "\(listing.stdout)")

        // `dgrid result` reads it out of the bundle.
        let one = try home.dgrid("result", "--repo", url, "t1")
        #expect(one.status == 0 && one.stdout == "one\n", "\(one.stdout)\(one.stderr)")
        let twoText = try home.dgrid("result", "--repo", url, "t2", "--json")
        #expect(twoText.status == 1, "the task's exit status says it failed")
        let two = try JSONSerialization.jsonObject(with: Data(twoText.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(two["exit_code"] as? Int == 3 && two["stderr"] as? String == "two\n", "\(twoText.stdout)")

        // status counts them as archived; results lists them.
        let status = try GridFixture.status(home, url)
        #expect(status["completed"] as? Int == 0)
        #expect((status["archived"] as? [String: Int]) == ["completed": 1, "failed": 1], "\(status)")
        let text = try home.dgrid("status", "--repo", url)
        #expect(text.stdout.contains("completed 0 (+1 archived)"), "\(text.stdout)")
        let page = try home.json("results", "--repo", url, "--json")
        let items = page["results"] as? [[String: Any]] ?? []
        #expect(Set(items.compactMap { $0["task_id"] as? String }) == ["t1", "t2"] && items.allSatisfy { $0["place"] as? String == "archive" }, "\(page)")

        // Still finished: a resubmission is refused, a replayed queue file is set aside, never run.
        let again = try TempDir.make(prefix: "dgrid-arch-again").path
        try GridFixture.taskFile(again, "t1", "echo replayed > /dev/null; echo RAN-AGAIN")
        let resubmit = try home.dgrid("submit", "--repo", url, again)
        #expect(resubmit.status != 0 && resubmit.stderr.contains("already in the grid (finished)"), "\(resubmit.stderr)")
        try GridFixture.push(repo, [(again + "/t1.json", "tasks/queue/t1.json")])
        // And a dependent of an archived task runs, reading its result under /inputs.
        let next = try TempDir.make(prefix: "dgrid-arch-next").path
        try GridFixture.taskFile(next, "t3", "cat /inputs/t1/stdout", extra: #","depends_on":["t1"]"#)
        let submitted = try home.dgrid("submit", "--repo", url, next)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "ar", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let after = try GridFixture.mainFiles(repo)
        #expect(after.contains("tasks/completed/ar-t3.json.log"), "\(after)")
        #expect(try GridFixture.show(repo, "tasks/completed/ar-t3.json.log").contains(#""stdout": "one\n""#))
        #expect(!after.contains("tasks/queue/t1.json") && after.contains { $0.hasPrefix("tasks/rejected/unplaced/") }, "\(after)")
        #expect(try home.dgrid("result", "--repo", url, "t1").stdout == "one\n", "the archived record stands")

        // A second run the same day takes the next bundle number and keeps the first's index lines.
        let second = try home.dgrid("archive", "--repo", url, "--older-than", "0s")
        #expect(second.status == 0 && second.stdout.contains("archived 1 tasks"), "\(second.stdout)\(second.stderr)")
        #expect(try GridFixture.mainFiles(repo).filter { $0.hasPrefix("archive/bundles/") && $0.hasSuffix("-2.tar.gz") }.count == 1)
        for (id, out) in [("t1", "one\n"), ("t3", "one\n")] {
            #expect(try home.dgrid("result", "--repo", url, id).stdout == out, "\(id)")
        }
    }

    @Test func resultsPageThroughEveryTaskOnceNewestFirst() throws {
        let (repo, url, home) = try finishedGrid()
        _ = repo
        #expect(try home.dgrid("archive", "--repo", url, "--older-than", "0s").status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-page").path
        for i in 3...5 { try GridFixture.taskFile(tasks, "t\(i)", "echo \(i)") }
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        #expect(try home.dgrid("worker", "--repo", url, "--node-id", "ar", "--once").status == 0)

        // A result published and not folded yet is listed too, as such.
        let record = #"{"task_id": "u1", "node_id": "ar", "exit_code": 0, "status": "completed", "finished_at": "2026-01-02T00:00:00Z"}"#
        let recordFile = tasks + "/u1-result.json"
        try record.write(toFile: recordFile, atomically: true, encoding: .utf8)
        let blob = try git("--git-dir", repo, "hash-object", "-w", recordFile).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tree = try ProcessRunner.run("/bin/sh", ["-c", "printf '100644 blob \(blob)\tresult.json\n' | git --git-dir '\(repo)' mktree"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let commit = try git("--git-dir", repo, "-c", "user.name=w", "-c", "user.email=w@w", "commit-tree", tree, "-m", "completed u1").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try git("--git-dir", repo, "update-ref", "refs/dgrid/results/u1", commit).status == 0)
        let unfolded = try home.json("results", "--repo", url, "--json", "--limit", "10")
        let u1 = (unfolded["results"] as? [[String: Any]] ?? []).first { $0["task_id"] as? String == "u1" }
        #expect(u1?["place"] as? String == "unfolded" && unfolded["total"] as? Int == 6, "\(unfolded)")
        #expect(try git("--git-dir", repo, "update-ref", "-d", "refs/dgrid/results/u1").status == 0)

        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            var args = ["results", "--repo", url, "--limit", "2", "--json"]
            if let cursor { args += ["--before", cursor] }
            let page = try home.json(args)
            #expect(page["total"] as? Int == 5)
            seen += (page["results"] as? [[String: Any]] ?? []).compactMap { $0["task_id"] as? String }
            cursor = page["next"] as? String
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 3 && seen.count == 5 && Set(seen) == ["t1", "t2", "t3", "t4", "t5"], "\(seen)")
        let failed = try home.json("results", "--repo", url, "--status", "failed", "--json")
        #expect((failed["results"] as? [[String: Any]])?.compactMap { $0["task_id"] as? String } == ["t2"], "\(failed)")
        let future = try home.json("results", "--repo", url, "--since", "2999-01-01T00:00:00Z", "--json")
        #expect(future["total"] as? Int == 0)
        let text = try home.dgrid("results", "--repo", url, "--limit", "2")
        #expect(text.status == 0 && text.stderr.contains("2 shown of 5; next page: dgrid results --before"), "\(text.stderr)")
        let badCursor = try home.dgrid("results", "--repo", url, "--before", "yesterday")
        #expect(badCursor.status != 0 && badCursor.stderr.contains("is not a cursor"), "\(badCursor.stderr)")
        let badStatus = try home.dgrid("results", "--repo", url, "--status", "done")
        #expect(badStatus.status != 0 && badStatus.stderr.contains("--status 'done' is not one of"), "\(badStatus.stderr)")
    }

    @Test func aCorruptBundleIsOneClearLineAndBreaksNothingElse() throws {
        let (repo, url, home) = try finishedGrid()
        #expect(try home.dgrid("archive", "--repo", url, "--older-than", "0s").status == 0)
        let bundle = try #require(try GridFixture.mainFiles(repo).first { $0.hasPrefix("archive/bundles/") })
        // Someone who can push replaces the bundle with bytes that are no tar.gz (its gzip header kept, the rest garbage).
        let garbage = try TempDir.make(prefix: "dgrid-garbage").path + "/bundle"
        try Data([0x1f, 0x8b, 0x08, 0x00] + [UInt8](repeating: 0x5a, count: 4096)).write(to: URL(fileURLWithPath: garbage))
        try GridFixture.push(repo, [(garbage, bundle)])

        let result = try home.dgrid("result", "--repo", url, "t1")
        #expect(result.status != 0, "\(result.stdout)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.first?.contains("t1's archived record") == true && lines.first?.contains("the bundle is corrupt") == true
                && lines.first?.contains("refs/dgrid-history/") == true, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        // The index still answers: listed, still finished (a resubmission is refused), status works, new work runs.
        #expect(try GridFixture.status(home, url)["archived"] as? [String: Int] == ["completed": 1, "failed": 1])
        #expect(try home.json("results", "--repo", url, "--json")["total"] as? Int == 2)
        let tasks = try TempDir.make(prefix: "dgrid-after-corrupt").path
        try GridFixture.taskFile(tasks, "t1", "echo again")
        #expect(try home.dgrid("submit", "--repo", url, tasks + "/t1.json").status != 0)
        try FileManager.default.createDirectory(atPath: tasks + "/n", withIntermediateDirectories: true)
        try GridFixture.taskFile(tasks + "/n", "t9", "echo nine")
        #expect(try home.dgrid("submit", "--repo", url, tasks + "/n").status == 0)
        #expect(try home.dgrid("worker", "--repo", url, "--node-id", "ar", "--once").status == 0)
        #expect(try home.dgrid("result", "--repo", url, "t9").stdout == "nine\n")
        // A missing bundle says so too.
        try GridFixture.push(repo, [("", bundle)])
        let gone = try home.dgrid("result", "--repo", url, "t2")
        #expect(gone.status != 0 && gone.stderr.contains("main has no \(bundle)"), "\(gone.stderr)")
    }

    /// Over `git daemon`: libgit2's file:// transport sends a fetcher every ref's objects, history refs
    /// included, so what a new worker downloads is only seen on a real transport.
    @Test func compactionUnderConcurrentSubmittersLosesNothing() throws {
        let base = try TempDir.make(prefix: "dgrid-compact").path
        #expect(try git("init", "--bare", "-q", "--initial-branch=main", base + "/grid.git").status == 0)
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        let port = try FreePort.loopback()
        #expect(try ProcessRunner.run(script, ["start", base, "\(port)"]).status == 0)
        defer { _ = try? ProcessRunner.run(script, ["stop", base]) }
        let repo = base + "/grid.git", url = "git://127.0.0.1:\(port)/grid.git"
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let first = base + "/first"
        try FileManager.default.createDirectory(atPath: first, withIntermediateDirectories: true)
        try GridFixture.taskFile(first, "t1", "echo one")
        #expect(try home.dgrid("submit", "--repo", url, first).status == 0)
        #expect(try home.dgrid("worker", "--repo", url, "--node-id", "ar", "--once").status == 0)
        // A clone made before compaction, as a D-GRID user pushing by hand has.
        let clone = try TempDir.make(prefix: "dgrid-old-clone").path + "/c"
        #expect(try git("clone", "-q", "--branch", "main", repo, clone).status == 0)
        let before = Int(try git("--git-dir", repo, "rev-list", "--count", "main").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(before >= 3)
        // A worker home synced before compaction: its mirror holds the old history (the checks below can fail).
        let oldTip = try git("-C", clone, "rev-parse", "HEAD").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let stale = try GridFixture.workerHome()
        #expect(try stale.dgrid("status", "--repo", url).status == 0)
        let mirrorName = try FileManager.default.contentsOfDirectory(atPath: stale.path + "/grids")[0]
        func mirrorHolds(_ home: ImageCLITests.Home, _ id: String) throws -> Bool {
            try git("--git-dir", home.path + "/grids/" + mirrorName, "cat-file", "-e", id).status == 0
        }
        #expect(try mirrorHolds(stale, oldTip) && mirrorHolds(home, oldTip))

        // Submitters race compactions: each `dgrid submit` is its own process.
        let dirs = try TempDir.make(prefix: "dgrid-race").path
        var submitters: [Process] = []
        for i in 0..<10 {
            let dir = dirs + "/s\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try GridFixture.taskFile(dir, "c\(i)", "echo c\(i)")
            submitters.append(try GridFaultCLITests.launch(["submit", "--repo", url, dir], home: home, log: dirs + "/s\(i).log"))
            if i % 3 == 0 {
                let compact = try home.dgrid("compact", "--repo", url)
                #expect(compact.status == 0, "\(compact.stderr)")
            }
        }
        for process in submitters { process.waitUntilExit() }
        for (i, process) in submitters.enumerated() {
            #expect(process.terminationStatus == 0, "\((try? String(contentsOfFile: dirs + "/s\(i).log", encoding: .utf8)) ?? "")")
        }
        // One more submission after the last race, so the closing compaction has history to drop.
        try FileManager.default.createDirectory(atPath: dirs + "/late", withIntermediateDirectories: true)
        try GridFixture.taskFile(dirs + "/late", "c-late", "echo late")
        #expect(try home.dgrid("submit", "--repo", url, dirs + "/late").status == 0)
        let last = try home.dgrid("compact", "--repo", url)
        #expect(last.status == 0 && last.stdout.contains("kept under refs/dgrid-history/main-"), "\(last.stdout)\(last.stderr)")
        // Every submission is on main; main is one commit; the old history is kept, never lost.
        let files = try GridFixture.mainFiles(repo)
        for i in 0..<10 { #expect(files.contains { $0.hasSuffix("/c\(i).json") }, "c\(i): \(files)") }
        #expect(try git("--git-dir", repo, "rev-list", "--count", "main").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        let history = try git("--git-dir", repo, "for-each-ref", "--format=%(refname)", "refs/dgrid-history/").stdout.split(separator: "\n")
        #expect(!history.isEmpty)
        let kept = history.map { Int((try? git("--git-dir", repo, "rev-list", "--count", String($0)).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "0") ?? 0 }
        #expect(kept.max() ?? 0 >= before, "\(kept) vs \(before)")
        #expect(try GridFixture.git(["--git-dir", repo, "merge-base", "--is-ancestor", try git("--git-dir", repo, "rev-parse", "main").stdout.trimmingCharacters(in: .whitespacesAndNewlines), String(history[0])]).status != 0,
                "main is a new root, not in the old history")
        // The worker that knew the old main goes on: it runs the new tasks.
        #expect(try home.dgrid("worker", "--repo", url, "--node-id", "ar", "--once").status == 0)
        #expect(try home.dgrid("result", "--repo", url, "c7").stdout == "c7\n")
        // A new worker's first sync fetches main's files only: its mirror has none of the old commits.
        let fresh = try GridFixture.workerHome()
        #expect(try fresh.dgrid("status", "--repo", url).status == 0)
        #expect(try !mirrorHolds(fresh, oldTip), "old history fetched")
        // Nor do the others keep it for long (docs/ARCHITECTURE.md §10): a mirror that sees main
        // rewritten notes when, and drops what only the old history reaches once the grace has
        // passed (processes sharing it may still push commits built on the old main: the racing
        // submitters above did). The test ages the note, as 15 minutes passing would.
        #expect(try stale.dgrid("status", "--repo", url).status == 0)
        for worker in [home, stale] {
            let marker = worker.path + "/grids/" + mirrorName + "/dgrid-main-rewritten"
            #expect(FileManager.default.fileExists(atPath: marker), "main's rewrite not noted in \(worker.path)")
            #expect(try mirrorHolds(worker, oldTip), "pruned within the grace")
            try "0".write(toFile: marker, atomically: true, encoding: .utf8)
            #expect(try worker.dgrid("status", "--repo", url).status == 0)
            #expect(try !mirrorHolds(worker, oldTip), "the old history stayed in the mirror after the grace")
            #expect(!FileManager.default.fileExists(atPath: marker))
        }
        #expect(try stale.dgrid("result", "--repo", url, "c7").stdout == "c7\n")
        // A push from the old clone is refused (not a fast-forward); the pusher's commit stays with them.
        try "x".write(toFile: clone + "/hand.txt", atomically: true, encoding: .utf8)
        #expect(try git("-C", clone, "add", "hand.txt").status == 0)
        #expect(try git("-C", clone, "-c", "user.name=h", "-c", "user.email=h@h", "commit", "-q", "-m", "by hand").status == 0)
        let push = try git("-C", clone, "push", "-q", "origin", "main")
        #expect(push.status != 0 && (push.stderr.contains("non-fast-forward") || push.stderr.contains("rejected")), "\(push.stderr)")
        #expect(!(try GridFixture.mainFiles(repo)).contains("hand.txt"))
        // Below the threshold, nothing happens.
        let again = try home.dgrid("compact", "--repo", url, "--min-commits", "50")
        #expect(again.status == 0 && again.stdout.contains("nothing to compact"), "\(again.stdout)")
    }

    @Test func theFoldLeaseHolderArchivesAndCompactsOnItsOwn() throws {
        let (repo, url, home) = try finishedGrid()
        sleep(2)  // t1 and t2 finished over a second ago
        let tasks = try TempDir.make(prefix: "dgrid-housekeeping").path
        try GridFixture.taskFile(tasks, "t3", "echo three")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let log = tasks + "/worker.log"
        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "ar"], home: home, log: log,
                                                  environment: ["DGRID_POLL_SECONDS": "0.2", "DGRID_ARCHIVE_AFTER_SECONDS": "1",
                                                                "DGRID_COMPACT_AFTER_COMMITS": "3"])
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
        let done = try GridFaultCLITests.waitUntil(30) {
            try !GridFixture.refs(repo, "refs/dgrid-history/").isEmpty
                && GridFixture.mainFiles(repo).contains { $0.hasPrefix("archive/bundles/") }
        }
        kill(worker.processIdentifier, SIGTERM)
        worker.waitUntilExit()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(done, "\(text)")
        #expect(text.contains("archive") && text.contains("compact"), "\(text)")
        #expect(try home.dgrid("result", "--repo", url, "t1").stdout == "one\n")
        #expect(try home.dgrid("result", "--repo", url, "t3").stdout == "three\n")
        #expect(!(try GridFixture.mainFiles(repo)).contains("tasks/completed/ar-t1.json"))
    }
}
