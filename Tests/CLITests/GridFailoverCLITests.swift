import Foundation
import Testing
import TestSupport

private let suitePorts = FreePort.loopbackPorts(2)

/// Several backends of one grid (docs/ARCHITECTURE.md §11, "Several backends"), end to end
/// through the built binaries: the primary over `git daemon`, the backup over smart HTTP
/// (lighttpd, token), two workers with three slots each and 200 tasks. The primary's daemon
/// is killed mid-run — or stopped (SIGSTOP): it accepts connections and never answers — and
/// the workers continue on the backup within 30 s; it comes back: the backends reconcile —
/// both mains agree, every task is completed exactly once, and a task run a second time
/// during the failover is kept in tasks/late/, not lost and not counted.
@Suite(.system, .serialized) struct GridFailoverCLITests {
    static let token = "dgrid-failover-token-Vb72Qx"
    static let taskCount = 200

    struct Backends {
        let base: String
        let servedA: String, servedB: String
        let repoA: String, repoB: String
        let urlA: String, urlB: String
        let tokenFile: String
        let daemon = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        let http = CLI.packageRoot.appendingPathComponent("scripts/git-http.sh").path

        init() throws {
            base = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-failover-\(UUID().uuidString.prefix(8))")
            servedA = base + "/a"
            servedB = base + "/b"
            for served in [servedA, servedB] {
                try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
                #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", served + "/grid.git"]).status == 0)
            }
            repoA = servedA + "/grid.git"
            repoB = servedB + "/grid.git"
            urlA = "git://127.0.0.1:\(suitePorts[0])/grid.git"
            urlB = "http://127.0.0.1:\(suitePorts[1])/git/grid.git"
            tokenFile = base + "/token"
            FileManager.default.createFile(atPath: tokenFile, contents: Data((GridFailoverCLITests.token + "\n").utf8),
                                           attributes: [.posixPermissions: 0o600])
        }

        var repoArguments: [String] { ["--repo", urlA, "--repo", urlB, "--token-file", tokenFile] }

        func startPrimary() throws {
            let started = try ProcessRunner.run(daemon, ["start", servedA, "\(suitePorts[0])"])
            try #require(started.status == 0, "\(started.stderr)")
        }

        func stopPrimary() throws {
            resumePrimary()
            _ = try ProcessRunner.run(daemon, ["stop", servedA])
        }

        /// The primary's daemon and the children serving its connections, stopped (SIGSTOP) or
        /// resumed: the kernel still accepts connections on its port, and nothing answers them.
        func signalPrimary(_ signal: String) {
            guard let pid = try? String(contentsOfFile: servedA + "/git-daemon.pid", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines), !pid.isEmpty else { return }
            _ = try? ProcessRunner.run("/bin/kill", ["-\(signal)", "--", "-\(pid)"])
        }

        func hangPrimary() { signalPrimary("STOP") }
        func resumePrimary() { signalPrimary("CONT") }

        func startBackup() throws {
            let started = try ProcessRunner.run("/bin/bash", ["-c", "exec \"$0\" start \"$1\" \"$2\" x-access-token < \"$3\"",
                                                              http, servedB, "\(suitePorts[1])", tokenFile])
            try #require(started.status == 0, "\(started.stderr)")
        }

        func stopBackup() { _ = try? ProcessRunner.run("/bin/bash", [http, "stop", servedB]) }

        func main(_ repo: String) -> String? {
            let r = try? GridFixture.git(["--git-dir", repo, "rev-parse", "--verify", "-q", "refs/heads/main"])
            return r?.status == 0 ? r?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }

        /// Task id → its completed records on `repo`'s main.
        func completed(_ repo: String) -> [String: Int] {
            var counts: [String: Int] = [:]
            for path in (try? GridFixture.mainFiles(repo)) ?? [] where path.hasPrefix("tasks/completed/") && path.hasSuffix(".json") {
                let name = String(path.dropFirst("tasks/completed/".count).dropLast(".json".count))
                if let dash = name.firstIndex(of: "-") { counts[String(name[name.index(after: dash)...]), default: 0] += 1 }
            }
            return counts
        }
    }

    /// How the primary fails mid-run.
    enum Failure: String, CaseIterable, CustomStringConvertible {
        /// Its daemon is killed: connections are refused.
        case killed
        /// Its daemon is stopped: connections are accepted and never answered. The deadlines are the
        /// defaults (30 s a listing, 60 s a push, five failures to open the circuit: minutes); the
        /// answer bound (`backend_answer_seconds`, 10 s) is what moves the fleet on.
        case hung
        var description: String { rawValue }
    }

    @Test(arguments: Failure.allCases) func aPrimaryFailingMidRunLosesNothingAndCountsNothingTwice(failure: Failure) throws {
        let grid = try Backends()
        try grid.startPrimary()
        defer { try? grid.stopPrimary() }
        try grid.startBackup()
        defer { grid.stopBackup() }
        let submitter = try GridFixture.workerHome()
        let initialised = try submitter.dgrid(["init"] + grid.repoArguments)
        try #require(initialised.status == 0, "\(initialised.stderr)")
        let tasks = grid.base + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        let ids = (0..<Self.taskCount).map { String(format: "f%03d", $0) }
        for id in ids { try GridFixture.taskFile(tasks, id, "echo \(id); sleep 0.3") }
        let submitted = try submitter.dgrid(["submit"] + grid.repoArguments + [tasks])
        try #require(submitted.status == 0, "\(submitted.stderr)")
        // `dgrid fold` with two backends brings the backup in step: main created there.
        let folded = try submitter.dgrid(["fold"] + grid.repoArguments)
        #expect(folded.stdout.contains("main created"), "\(folded.stdout)\(folded.stderr)")
        #expect(grid.main(grid.repoA) != nil && grid.main(grid.repoA) == grid.main(grid.repoB))

        var environment = [
            "DGRID_SLOTS": "3", "DGRID_POLL_SECONDS": "0.2", "DGRID_POLL_CEILING_SECONDS": "1", "DGRID_HEARTBEAT_SECONDS": "1",
            "DGRID_LEASE_SECONDS": "20", "DGRID_FOLD_INTERVAL_SECONDS": "1", "DGRID_CIRCUIT_FAILURES": "3",
            "DGRID_CIRCUIT_CEILING_SECONDS": "4", "DGRID_GIT_DEADLINES": "list=5,fetch=20,push=10",
        ]
        if failure == .hung {
            // The shipped bounds: only the answer bound can make 30 s. Its probes run aside (GridBackend.probeAside).
            environment["DGRID_GIT_DEADLINES"] = "list=30,fetch=300,push=60"
            environment["DGRID_CIRCUIT_FAILURES"] = "5"
            environment["DGRID_CIRCUIT_CEILING_SECONDS"] = "30"
            environment["DGRID_LEASE_SECONDS"] = "60"
        }
        var workers: [(Process, String)] = []
        for node in ["fo1", "fo2"] {
            let home = try GridFixture.workerHome()
            let log = grid.base + "/\(node).log"
            workers.append((try GridFaultCLITests.launch(["worker"] + grid.repoArguments + ["--node-id", node], home: home, log: log,
                                                          environment: environment), log))
        }
        defer { for (worker, _) in workers where worker.isRunning { worker.terminate(); worker.waitUntilExit() } }
        func logs() -> String { workers.map { (try? String(contentsOfFile: $0.1, encoding: .utf8)) ?? "" }.joined(separator: "\n----\n") }

        // Mid-run, with the backup in step at least once since work began: the primary's daemon dies or hangs.
        #expect(GridFaultCLITests.waitUntil(120) { grid.completed(grid.repoA).count >= 40 }, "\(logs().suffix(4000))")
        #expect(GridFaultCLITests.waitUntil(30) { grid.completed(grid.repoB).count >= 20 }, "the backup follows: \(logs().suffix(4000))")
        switch failure {
        case .killed: try grid.stopPrimary()
        case .hung: grid.hangPrimary()
        }
        let killedAt = Date()
        let onBackupBefore = grid.completed(grid.repoB).count
        try #require(onBackupBefore < Self.taskCount, "the run ended before the primary was killed: nothing to show")

        // The workers continue on the backup within 30 s: new tasks completed on its main.
        let continued = GridFaultCLITests.waitUntil(30) { grid.completed(grid.repoB).count > onBackupBefore }
        let continueSeconds = Date().timeIntervalSince(killedAt)
        #expect(continued, "nothing completed on the backup within 30 s of the primary failing (\(failure)): \(logs().suffix(6000))")
        print("failover (\(failure)): the backup completed tasks \(String(format: "%.1f", continueSeconds)) s after the primary failed")
        if failure == .hung {
            #expect(logs().contains("went silent for 10 s"), "the answer bound moved the step: \(logs().suffix(4000))")
        }
        #expect(logs().contains("the grid's authority moved"), "\(logs().suffix(4000))")

        // Some more work on the backup alone, then the primary returns.
        _ = GridFaultCLITests.waitUntil(8) { grid.completed(grid.repoB).count >= onBackupBefore + 30 }
        switch failure {
        case .killed: try grid.startPrimary()
        case .hung: grid.resumePrimary()
        }

        // Everything ends completed once on the primary, and the backup agrees.
        let settled = GridFaultCLITests.waitUntil(240) {
            let done = grid.completed(grid.repoA)
            return done.count == Self.taskCount && grid.main(grid.repoA) == grid.main(grid.repoB)
        }
        let done = grid.completed(grid.repoA)
        #expect(settled, "completed on the primary: \(done.count), mains \(grid.main(grid.repoA) ?? "-") / \(grid.main(grid.repoB) ?? "-")\n\(logs().suffix(6000))")
        for id in ids { #expect(done[id] == 1, "task \(id) completed \(done[id] ?? 0) times on main") }
        let files = try GridFixture.mainFiles(grid.repoA)
        #expect(!files.contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") })
        #expect(!files.contains { $0.hasPrefix("tasks/failed/") && $0.hasSuffix(".json") }, "\(files.filter { $0.hasPrefix("tasks/failed/") })")
        // A second run made during the failover is a late record of a task completed once, never a loss.
        let late = files.filter { $0.hasPrefix("tasks/late/") && $0.hasSuffix(".json.log") }
        for record in late {
            let id = ids.first { record.contains("-\($0)") }
            #expect(id.map { done[$0] == 1 } == true, "a late record of a task not completed: \(record)")
        }
        print("failover (\(failure)): \(late.count) second runs kept in tasks/late/")
        // A run the hang held up may publish to the backup as main settles: the next reconciliation
        // (the fold-lease holder's, every 10 s) takes it to the authority as late.
        let drained = GridFaultCLITests.waitUntil(30) { ((try? GridFixture.refs(grid.repoB, "refs/dgrid/results/")) ?? ["?"]).isEmpty }
        #expect(drained, "results left on the backup: \((try? GridFixture.refs(grid.repoB, "refs/dgrid/results/")) ?? [])\n\(logs().suffix(3000))")

        // With the workers stopped and one more fold (which reconciles), status names the
        // authority and both backends' main, the same.
        for (worker, _) in workers where worker.isRunning { worker.terminate(); worker.waitUntilExit() }
        #expect(try submitter.dgrid(["fold"] + grid.repoArguments).status == 0)
        let status = try submitter.json(["status", "--json"] + grid.repoArguments)
        let backends = status["backends"] as? [[String: Any]] ?? []
        #expect(backends.count == 2, "\(status)")
        #expect(backends.first?["authority"] as? Bool == true, "\(backends)")
        #expect(Set(backends.compactMap { $0["main"] as? String }).count == 1, "\(backends)")
    }
}
