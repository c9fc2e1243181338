import Foundation
import Testing
import TestSupport

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(1)

/// Workers dying and remotes going away (docs/THREATS.md: Liveness): no task lost,
/// none completed twice.
@Suite(.system, .serialized) struct GridFaultCLITests {
    static let port = suitePorts[0]

    /// Starts `dgrid ARGS` without waiting for it; output goes to `log`.
    static func launch(_ args: [String], home: ImageCLITests.Home, log: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(["DGRID_HOME": home.path]) { $1 }.merging(environment) { $1 }
        FileManager.default.createFile(atPath: log, contents: nil)
        // One open file for both streams: two would each write from offset 0 over the other.
        let output = FileHandle(forWritingAtPath: log)
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    @Test func killedWorkersTaskIsTakenOverAfterItsLeaseAndCompletesOnce() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let (a, b) = (try GridFixture.workerHome(), try GridFixture.workerHome())
        #expect(try a.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-fault").path
        try GridFixture.taskFile(tasks, "slow", "sleep 4; echo done", timeout: 30)
        #expect(try a.dgrid("submit", "--repo", url, tasks).status == 0)

        // A lease long enough that the checks made within it cannot outlast it under load.
        let first = try Self.launch(["worker", "--repo", url, "--node-id", "node_a", "--lease", "10", "--once"],
                                    home: a, log: tasks + "/a.log")
        let claimed = try Self.waitUntil(15) { try !GridFixture.refs(repo, "refs/dgrid/claims").isEmpty }
        #expect(claimed, "node_a never claimed: \((try? String(contentsOfFile: tasks + "/a.log", encoding: .utf8)) ?? "")")
        usleep(500_000)
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()

        let status = try GridFixture.status(b, url)
        let running = status["running"] as? [[String: Any]] ?? []
        #expect(running.first?["task_id"] as? String == "slow" && running.first?["node_id"] as? String == "node_a", "\(status)")
        #expect((status["queued_by_priority"] as? [String: Int])?["normal"] == 1, "\(status)")
        // Within the lease nobody may take it; after it, node_b does.
        let early = try b.dgrid("worker", "--repo", url, "--node-id", "node_b", "--once")
        #expect(early.status == 0)
        #expect(!(try GridFixture.mainFiles(repo)).contains { $0.hasPrefix("tasks/completed/") && $0.hasSuffix("-slow.json") })
        // After it (read from the ledger, not guessed with a fixed sleep), node_b does.
        let expired = try Self.waitUntil(30) {
            let running = try GridFixture.status(b, url)["running"] as? [[String: Any]] ?? []
            return running.first?["expired"] as? Bool == true
        }
        #expect(expired, "node_a's lease never expired")
        let late = try b.dgrid("worker", "--repo", url, "--node-id", "node_b", "--lease", "30", "--once")
        #expect(late.status == 0, "\(late.stderr)")
        let files = try GridFixture.mainFiles(repo)
        #expect(files.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix("-slow.json") } == ["tasks/completed/node_b-slow.json"], "\(files)")
        #expect(!files.contains { $0.hasPrefix("tasks/late/") || $0.hasPrefix("tasks/in_progress/node_a") })
        let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "tasks/completed/node_b-slow.json.log").utf8)) as? [String: Any] ?? [:]
        #expect(record["attempt"] as? Int == 2)
        #expect(record["stdout"] as? String == "done\n")
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty)
        // node_a's sandbox went down with it (PDEATHSIG): no sleeper of its left behind.
        let sleepers = try ProcessRunner.run("/usr/bin/pgrep", ["-f", "sleep 4; echo done"])
        #expect(sleepers.stdout.isEmpty, "left behind: \(sleepers.stdout)")
    }

    /// A poison task — one whose worker dies every time — is not taken over
    /// forever: past `max_attempts` the next claimer folds it into failed/
    /// with every attempt's node and how it ended, without running it again.
    @Test func aTaskPastMaxAttemptsIsFailedWithEveryAttemptListed() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let url = "file://" + repo
        let (a, b) = (try GridFixture.workerHome(), try GridFixture.workerHome())
        #expect(try a.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-poison").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try GridFixture.taskFile(tasks, "poison", "echo started; sleep 41", timeout: 60, extra: ",\"max_attempts\":1")
        #expect(try a.dgrid("submit", "--repo", url, tasks).status == 0)

        let first = try Self.launch(["worker", "--repo", url, "--node-id", "node_a", "--lease", "3", "--once"],
                                    home: a, log: tasks + "/a.log")
        #expect(try Self.waitUntil(20) { try !GridFixture.refs(repo, "refs/dgrid/claims").isEmpty }, "node_a never claimed")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        // Waits for the lease to run out by reading it, not by sleeping a fixed time.
        let expired = try Self.waitUntil(30) {
            let running = try GridFixture.status(b, url)["running"] as? [[String: Any]] ?? []
            return running.first?["expired"] as? Bool == true
        }
        #expect(expired, "node_a's lease never expired")

        let second = try b.dgrid("worker", "--repo", url, "--node-id", "node_b", "--once")
        #expect(second.status == 0, "\(second.stderr)")
        let files = try GridFixture.mainFiles(repo)
        let path = "tasks/failed/node_b-poison.json.log"
        try #require(files.contains(path), "\(files)")
        let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
        #expect(record["status"] as? String == "failed")
        #expect(record["stdout"] as? String == "", "not run again: \(record)")
        #expect((record["stderr"] as? String ?? "").contains("gave up"), "\(record)")
        let attempts = record["previous_attempts"] as? [[String: Any]] ?? []
        #expect(attempts.count == 1 && attempts.first?["node_id"] as? String == "node_a"
                && attempts.first?["end"] as? String == "lease_expired", "\(attempts)")
        #expect(!files.contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix("poison.json") }, "\(files)")
        // 41: no other suite sleeps that long (another suite running beside this one may sleep 40).
        #expect(try ProcessRunner.run("/usr/bin/pgrep", ["-f", "sleep 41"]).stdout.isEmpty, "left behind")
    }

    /// SIGTERM: no new claims, the running task gets the grace period, then its
    /// claim is released so another worker takes it at once (not after the
    /// 90 s lease), and the worker's sandbox goes down with it.
    @Test func sigtermReleasesClaimsAfterTheGracePeriod() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let (a, b) = (try GridFixture.workerHome(), try GridFixture.workerHome())
        #expect(try a.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-grace").path
        // Long enough to be running when SIGTERM comes (right after its claim
        // appears); short enough that node_b's whole second run costs 9 s, not 30.
        try GridFixture.taskFile(tasks, "long", "sleep 3; sleep 6; echo finished", timeout: 60)
        try GridFixture.taskFile(tasks, "next", "echo next", extra: ",\"priority\":\"low\"")
        #expect(try a.dgrid("submit", "--repo", url, tasks).status == 0)

        let worker = try Self.launch(["worker", "--repo", url, "--node-id", "node_a", "--slots", "1", "--grace", "1"],
                                     home: a, log: tasks + "/a.log", environment: ["PULL_INTERVAL": "0.5"])
        #expect(try Self.waitUntil(15) { try !GridFixture.refs(repo, "refs/dgrid/claims").isEmpty })
        let stopped = Date()
        kill(worker.processIdentifier, SIGTERM)
        worker.waitUntilExit()
        let log = (try? String(contentsOfFile: tasks + "/a.log", encoding: .utf8)) ?? ""
        #expect(Date().timeIntervalSince(stopped) < 10, "\(log)")
        #expect(worker.terminationStatus == 143, "\(log)")
        #expect(log.contains("claim released"), "\(log)")
        // The worker returned and the CLI chose the exit: no thread ended the process.
        #expect(log.contains("worker stopped") && log.contains("abandoned=1"), "\(log)")
        // Given back, not held: the claim stays only as a record of the attempt.
        let claims = (try GridFixture.status(b, url)["running"] as? [[String: Any]]) ?? []
        #expect(claims.allSatisfy { $0["state"] as? String == "released" }, "\(claims)")
        #expect(!log.contains("task=next"), "no new claim after SIGTERM: \(log)")
        #expect(try ProcessRunner.run("/usr/bin/pgrep", ["-f", "^sleep 6$"]).stdout.isEmpty, "sandbox left behind")

        // Released, not leased: node_b takes it right away.
        let taken = try b.dgrid("worker", "--repo", url, "--node-id", "node_b", "--once")
        #expect(taken.status == 0, "\(taken.stderr)")
        let files = try GridFixture.mainFiles(repo)
        #expect(files.contains("tasks/completed/node_b-long.json") && files.contains("tasks/completed/node_b-next.json"), "\(files)")
    }

    @Test func gitServerGoingAwayMidRunLosesNothing() throws {
        let base = try TempDir.make(prefix: "dgrid-fault-daemon").path
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", base + "/grid.git"]).status == 0)
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        #expect(try ProcessRunner.run(script, ["start", base, "\(Self.port)"]).status == 0)
        defer { _ = try? ProcessRunner.run(script, ["stop", base]) }
        let url = "git://127.0.0.1:\(Self.port)/grid.git"
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = base + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        for i in 0..<4 { try GridFixture.taskFile(tasks, "t\(i)", "sleep 1; echo \(i)") }
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        let worker = try Self.launch(["worker", "--repo", url, "--node-id", "node_a", "--slots", "1"], home: home,
                                     log: base + "/worker.log", environment: ["PULL_INTERVAL": "0.5", "HEARTBEAT_INTERVAL": "1"])
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
        #expect(try Self.waitUntil(15) { try !GridFixture.refs(base + "/grid.git", "refs/dgrid/claims").isEmpty })
        #expect(try ProcessRunner.run(script, ["stop", base]).status == 0)
        sleep(3)
        #expect(try ProcessRunner.run(script, ["start", base, "\(Self.port)"]).status == 0)
        let done = try Self.waitUntil(60) {
            try GridFixture.mainFiles(base + "/grid.git").filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix(".json") }.count == 4
        }
        kill(worker.processIdentifier, SIGTERM)
        worker.waitUntilExit()
        let log = (try? String(contentsOfFile: base + "/worker.log", encoding: .utf8)) ?? ""
        #expect(done, "not all completed: \(log)")
        #expect(worker.terminationStatus == 0, "\(log)")
        #expect(log.contains("cannot"), "the outage was seen and survived: \(log)")
        let files = try GridFixture.mainFiles(base + "/grid.git")
        for i in 0..<4 {
            #expect(files.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix("-t\(i).json") }.count == 1, "t\(i)")
        }
        #expect(!files.contains { $0.hasPrefix("tasks/late/") })
    }
}
