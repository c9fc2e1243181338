import Foundation
import Testing
import TestSupport

/// A task file that floods its output must not pin a worker's slot past its
/// timeout (issue 9): the run is killed at `timeout_seconds` and folds as a
/// timed-out failure, with both streams capped and counted.
@Suite(.system, .serialized) struct GridOutputFloodCLITests {
    /// Under the worker's default CPU limit (1) and with as many CPUs as the
    /// worker allows, so the writers can outrun the supervisor.
    @Test(arguments: [1, 4])
    func floodingTaskIsFoldedAsTimedOut(cpus: Int) throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        let tasks = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-flood-\(UUID().uuidString.prefix(8))")
        defer {
            for path in [repo, home.path, tasks] { try? FileManager.default.removeItem(atPath: path) }
        }
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        // busybox cat sendfile()s a tmpfs file into the pipe: page references,
        // no copy, gigabytes a second into each stream from 32 writers, for
        // longer than the test would wait if the timeout were missed.
        let writer = "timeout 10 sh -c 'while :; do cat /tmp/f; done'"
        let writers = "head -c 32m /dev/zero > /tmp/f; i=0; while [ $i -lt 32 ]; do \(writer) & \(writer) >&2 & i=$((i+1)); done; wait"
        try GridFixture.taskFile(tasks, "flood", writers, timeout: 2,
                                 extra: ",\"resources\":{\"cpus\":\(cpus),\"pids\":1024}")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")

        let files = try GridFixture.mainFiles(repo)
        #expect(files.contains("tasks/failed/node_a-flood.json.log"), "\(files)")
        // Folded once, as failed: not completed, not still in progress or queued.
        #expect(files.filter { $0.hasSuffix("-flood.json") || $0.hasSuffix("/flood.json") } == ["tasks/failed/node_a-flood.json"], "\(files)")
        let log = try GridFixture.show(repo, "tasks/failed/node_a-flood.json.log")
        let record = try JSONSerialization.jsonObject(with: Data(log.utf8)) as? [String: Any] ?? [:]
        #expect(record["status"] as? String == "failed")
        #expect(record["timed_out"] as? Bool == true, "\(record)")
        #expect(record["exit_code"] as? Int == 124)
        let duration = record["duration_ms"] as? Int ?? .max
        #expect(duration < 3000, "cpus \(cpus): killed after \(duration) ms, timeout 2 s")
        for stream in ["stdout", "stderr"] {
            #expect(record["\(stream)_truncated"] as? Bool == true, "\(stream): \(record["\(stream)_bytes"] ?? "?")")
            #expect((record[stream] as? String)?.utf8.count == 10 * 1024)
        }
        let status = try GridFixture.status(home, url)
        #expect(status["failed"] as? Int == 1 && status["completed"] as? Int == 0, "\(status)")
        #expect(try ProcessRunner.run("/usr/bin/pgrep", ["-f", "cat /tmp/f"]).stdout.isEmpty, "writers left behind")
    }
}
