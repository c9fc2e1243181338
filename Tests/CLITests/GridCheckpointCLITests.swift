import Foundation
import Testing
import TestSupport

/// Checkpoints end to end (docs/ARCHITECTURE.md §10): a counting task snapshotted
/// every second, its worker killed half way, resumed by another worker from
/// the last snapshot; progress in `status`; checkpoints that must not be
/// restored (garbage, another task's, bytes that do not match); a
/// `/checkpoint` filled past its cap.
@Suite(.system, .serialized) struct GridCheckpointCLITests {
    /// Counts to 40, a step every 0.25 s, keeping "count uptime" in /checkpoint
    /// (the kernel's clock, which the test reads too) and its progress beside it.
    static let counter = """
        i=0; [ -f /checkpoint/count ] && read i u < /checkpoint/count
        read up idle < /proc/uptime; echo "start $i attempt $DGRID_ATTEMPT resumed $DGRID_RESUMED at $up" >&2
        while [ $i -lt 40 ]; do i=$((i+1)); read up idle < /proc/uptime
        echo "$i $up" > /checkpoint/count.new; mv /checkpoint/count.new /checkpoint/count
        echo "$((i*100/40)) counting $i" > /checkpoint/progress; sleep 0.25; done
        echo "done $i"
        """

    static func uptime() throws -> Double {
        Double(try String(contentsOfFile: "/proc/uptime", encoding: .utf8).split(separator: " ")[0]) ?? 0
    }

    private func record(_ repo: String, _ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
    }

    /// The file `path` of the task's checkpoint on the grid, found through its manifest.
    static func checkpointFile(_ repo: String, task: String, path: String) throws -> String? {
        let ref = "refs/dgrid/checkpoints/\(task)"
        let manifest = try GridFixture.git(["--git-dir", repo, "show", "\(ref):checkpoint.json"])
        guard manifest.status == 0,
              let object = try JSONSerialization.jsonObject(with: Data(manifest.stdout.utf8)) as? [String: Any],
              let file = (object["files"] as? [[String: Any]])?.first(where: { $0["path"] as? String == path }),
              let digest = (file["digest"] as? String)?.dropFirst("sha256:".count) else { return nil }
        return try GridFixture.git(["--git-dir", repo, "show", "\(ref):blobs/\(digest)"]).stdout
    }

    @Test func aKilledWorkersTaskResumesFromItsLastCheckpointOnAnotherWorker() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let (a, b) = (try GridFixture.workerHome(), try GridFixture.workerHome())
        #expect(try a.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-checkpoint").path
        try GridFixture.taskFile(tasks, "count", Self.counter.replacingOccurrences(of: "\n", with: "; "), timeout: 120, extra: #","checkpointing":{"interval_seconds":1}"#)
        #expect(try a.dgrid("submit", "--repo", url, tasks).status == 0)

        let first = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "node_a", "--lease", "4", "--once"],
                                                 home: a, log: tasks + "/a.log", environment: ["DGRID_HEARTBEAT_SECONDS": "1"])
        // Half way, by the progress its heartbeat carries (read as an outsider reads it: `dgrid status`).
        var shown = ""
        let halfWay = try GridFaultCLITests.waitUntil(40) {
            let running = try GridFixture.status(b, url)["running"] as? [[String: Any]] ?? []
            shown = running.first?["progress"] as? String ?? ""
            return (Int(shown.prefix { $0.isNumber }) ?? 0) >= 45 && running.first?["checkpointed"] as? Bool == true
        }
        #expect(halfWay, "never half way: \(shown); \((try? String(contentsOfFile: tasks + "/a.log", encoding: .utf8)) ?? "")")
        #expect(shown.hasSuffix("% counting \(Int(shown.prefix { $0.isNumber })! * 40 / 100)") || shown.contains("counting"), "\(shown)")
        let killedAt = try Self.uptime()
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()

        // What survives: the last snapshot node_a published.
        let saved = try #require(try Self.checkpointFile(repo, task: "count", path: "count"), "no checkpoint of count on the grid")
        let parts = saved.split(separator: " ")
        let (savedCount, savedAt) = (Int(parts[0]) ?? -1, Double(parts[1].trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
        #expect(savedCount >= 10, "\(saved)")

        let expired = try GridFaultCLITests.waitUntil(30) {
            (try GridFixture.status(b, url)["running"] as? [[String: Any]] ?? []).first?["expired"] as? Bool == true
        }
        #expect(expired)
        let second = try b.dgrid("worker", "--repo", url, "--node-id", "node_b", "--once")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("checkpoint restored"), "\(second.stderr)")

        let result = try record(repo, "tasks/completed/node_b-count.json.log")
        #expect(result["stdout"] as? String == "done 40\n")
        #expect(result["attempt"] as? Int == 2)
        let stderr = result["stderr"] as? String ?? ""
        let start = try #require(stderr.split(separator: "\n").first { $0.hasPrefix("start ") }, "\(stderr)").split(separator: " ")
        #expect(start.count == 8 && Int(start[1]) == savedCount && start[3] == "2" && start[5] == "1", "\(stderr)")
        let resumedAt = Double(start.last ?? "") ?? 0
        // Work repeated: from the step the last snapshot holds to the kill — at most one interval,
        // plus the time a snapshot takes to publish. The takeover delay is the lease's business.
        let repeated = killedAt - savedAt, takeover = resumedAt - killedAt
        print("checkpoint resume: work repeated \(String(format: "%.2f", repeated)) s (interval 1 s), takeover \(String(format: "%.2f", takeover)) s (lease 4 s)")
        #expect(repeated >= 0 && repeated <= 2.0, "repeated \(repeated) s")
        #expect(takeover > 0 && takeover < 30)
        // Folded with its result: the checkpoint ref goes.
        #expect(try GridFixture.refs(repo, "refs/dgrid/checkpoints").isEmpty)
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty)
    }

    /// A commit made by hand, as any writer can push one: `files` (path → content) in its tree.
    static func plant(_ repo: String, ref: String, files: [String: String]) throws {
        var script = "set -e; export GIT_DIR='\(repo)' GIT_AUTHOR_NAME=w GIT_AUTHOR_EMAIL=w@w GIT_COMMITTER_NAME=w GIT_COMMITTER_EMAIL=w@w; entries=''\n"
        var index = 0
        for (path, content) in files.sorted(by: { $0.key < $1.key }) {
            let local = NSTemporaryDirectory() + "dgrid-plant-\(UUID().uuidString.prefix(8))-\(index)"
            try Data(content.utf8).write(to: URL(fileURLWithPath: local))
            index += 1
            let directory = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
            script += "b=$(git hash-object -w '\(local)'); rm '\(local)'\n"
            if directory.isEmpty {
                script += "entries=\"$entries$(printf '100644 blob %s\\t%s' \"$b\" '\(name)')\n\"\n"
            } else {
                script += "sub=$(printf '100644 blob %s\\t%s\\n' \"$b\" '\(name)' | git mktree)\n"
                script += "entries=\"$entries$(printf '040000 tree %s\\t%s' \"$sub\" '\(directory)')\n\"\n"
            }
        }
        script += "tree=$(printf '%s' \"$entries\" | git mktree); commit=$(git commit-tree \"$tree\" -m planted); git update-ref '\(ref)' \"$commit\"\n"
        let r = try ProcessRunner.run("/bin/sh", ["-c", script])
        #expect(r.status == 0, "\(r.stderr)")
    }

    static func sha256(_ text: String) throws -> String {
        let file = NSTemporaryDirectory() + "dgrid-sha-\(UUID().uuidString.prefix(8))"
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        return String(try ProcessRunner.run("/usr/bin/sha256sum", [file]).stdout.prefix(64))
    }

    static func manifest(task: String, files: [(path: String, digest: String, size: Int)]) -> String {
        let entries = files.map { #"{"path":"\#($0.path)","digest":"\#($0.digest)","size":\#($0.size),"mode":420}"# }.joined(separator: ",")
        return #"{"task_id":"\#(task)","node_id":"w","attempt":1,"taken_at":"2026-12-04T00:00:00Z","directories":[],"files":[\#(entries)],"symlinks":[],"skipped":0}"#
    }

    /// Checkpoints a writer planted — garbage, another task's, bytes that do not
    /// match their digest — are refused: the task starts afresh (and says so),
    /// the refusal is audited with why, nothing of them reaches the sandbox.
    @Test func checkpointsThatMustNotBeRestoredAreRefusedAndTheTaskStartsAfresh() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-checkpoint-bad").path
        let counter = Self.counter.replacingOccurrences(of: "\n", with: "; ").replacingOccurrences(of: "-lt 40", with: "-lt 3")
        for id in ["garbage", "borrowed", "tampered", "truncated"] {
            try GridFixture.taskFile(tasks, id, counter + "; ls /checkpoint", timeout: 60, extra: #","checkpointing":{"interval_seconds":5}"#)
        }
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let b = "9 0\n", bDigest = "sha256:" + (try Self.sha256(b))
        try Self.plant(repo, ref: "refs/dgrid/checkpoints/garbage", files: ["checkpoint.json": "{not json", "blobs/x": "1"])
        try Self.plant(repo, ref: "refs/dgrid/checkpoints/borrowed",
                       files: ["checkpoint.json": Self.manifest(task: "someone-else", files: [("count", bDigest, b.utf8.count)]),
                               "blobs/\(bDigest.dropFirst(7))": b])
        try Self.plant(repo, ref: "refs/dgrid/checkpoints/tampered",
                       files: ["checkpoint.json": Self.manifest(task: "tampered", files: [("count", bDigest, b.utf8.count)]),
                               "blobs/\(bDigest.dropFirst(7))": "8 0\n"])
        try Self.plant(repo, ref: "refs/dgrid/checkpoints/truncated",
                       files: ["checkpoint.json": Self.manifest(task: "truncated", files: [("../../etc/x", bDigest, b.utf8.count)]),
                               "blobs/\(bDigest.dropFirst(7))": b])

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wc", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        for id in ["garbage", "borrowed", "tampered", "truncated"] {
            let result = try record(repo, "tasks/completed/wc-\(id).json.log")
            #expect((result["stderr"] as? String ?? "").hasPrefix("start 0 attempt 1 resumed 0"), "\(id): \(result)")
            #expect(result["stdout"] as? String == "done 3\ncount\nprogress\n", "\(id): nothing planted reached the sandbox: \(result)")
        }
        let refused = try GridQuotaCLITests.events(home).filter { $0["event"] as? String == "checkpoint_refused" }
        let why = Dictionary(refused.map { ($0["task_id"] as? String ?? "", $0["reason"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
        #expect(why["garbage"]?.contains("not a JSON object") == true, "\(why)")
        #expect(why["borrowed"]?.contains("someone-else") == true, "\(why)")
        #expect(why["tampered"]?.contains("do not match the digest") == true, "\(why)")
        #expect(why["truncated"]?.contains("clean relative path") == true, "\(why)")
        #expect(try GridFixture.refs(repo, "refs/dgrid/checkpoints").isEmpty, "folded with the results")
    }

    /// A task that writes past its /checkpoint's size gets ENOSPC there, like any
    /// full disk; it goes on, and the worker's own disk took none of it.
    @Test func aCheckpointFilledPastItsCapIsRefusedWritesNotAHostsDisk() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-checkpoint-full").path
        try GridFixture.taskFile(tasks, "full", "dd if=/dev/zero of=/checkpoint/big bs=64k count=64 2>&1; ls -l /checkpoint/big | awk '{print $5}'; sleep 1.5",
                                 timeout: 60, extra: #","checkpointing":{"interval_seconds":1}"#)
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wf", "--once", "--set", "checkpoint_size=1m")
        #expect(worker.status == 0, "\(worker.stderr)")
        let stdout = try record(repo, "tasks/completed/wf-full.json.log")["stdout"] as? String ?? ""
        #expect(stdout.contains("No space left on device"), "\(stdout)")
        let written = Int(stdout.split(separator: "\n").last ?? "") ?? .max
        #expect(written <= 1 << 20, "at most the cap: \(stdout)")
        #expect(!worker.stderr.contains("checkpoint not taken"), "a full /checkpoint still snapshots: \(worker.stderr)")
    }

    /// `::progress` on stdout reaches `dgrid status` through the heartbeat; a
    /// worker stopped with SIGTERM takes a last snapshot in its grace period (the
    /// interval, a minute, never came), and the next holder resumes from it.
    @Test func progressShowsInStatusAndAStoppingWorkerSnapshotsBeforeGivingTheTaskBack() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let (a, b) = (try GridFixture.workerHome(), try GridFixture.workerHome())
        #expect(try a.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-checkpoint-grace").path
        let script = "if [ -f /checkpoint/state ]; then echo \"resumed $DGRID_RESUMED attempt $DGRID_ATTEMPT: $(cat /checkpoint/state)\"; exit 0; fi; "
            + "echo half-done > /checkpoint/state; echo '::progress 50 half way'; sleep 60"
        try GridFixture.taskFile(tasks, "long", script, timeout: 120, extra: #","checkpointing":{"interval_seconds":60}"#)
        #expect(try a.dgrid("submit", "--repo", url, tasks).status == 0)
        let first = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "node_a", "--grace", "1"],
                                                 home: a, log: tasks + "/a.log", environment: ["DGRID_HEARTBEAT_SECONDS": "0.5"])
        var shown = ""
        let progressed = try GridFaultCLITests.waitUntil(30) {
            shown = (try GridFixture.status(b, url)["running"] as? [[String: Any]] ?? []).first?["progress"] as? String ?? ""
            return shown == "50% half way"
        }
        #expect(progressed, "status showed \(shown)")
        let text = try b.dgrid("status", "--repo", url)
        #expect(text.stdout.contains("progress 50% half way"), "\(text.stdout)")
        #expect(try GridFixture.refs(repo, "refs/dgrid/checkpoints").isEmpty, "no snapshot before the interval")
        kill(first.processIdentifier, SIGTERM)
        first.waitUntilExit()
        #expect(first.terminationStatus == 143)
        #expect(try Self.checkpointFile(repo, task: "long", path: "state") == "half-done\n", "the grace period's snapshot")
        // Given back at the end of the grace: node_b takes it at once, from the snapshot.
        let second = try b.dgrid("worker", "--repo", url, "--node-id", "node_b", "--once")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try record(repo, "tasks/completed/node_b-long.json.log")["stdout"] as? String == "resumed 1 attempt 2: half-done\n")
    }
}
