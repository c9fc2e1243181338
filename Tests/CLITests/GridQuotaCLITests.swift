import Foundation
import Testing
import TestSupport

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(1)

/// The host's policy per principal (docs/ARCHITECTURE.md §9), through the built
/// binaries and real repositories: images and per-task maxima refuse a task
/// with the reason and nothing run; more signers by priority; rates and
/// concurrency make tasks wait, counted from the ledger by every worker alike.
@Suite(.system, .serialized)
struct GridQuotaCLITests {
    static let port = suitePorts[0]

    /// Keys for alice, bob and carol; a home whose trust lists the three and holds `policy`.
    final class Principals {
        let dir: String
        init() throws {
            dir = try TempDir.make(prefix: "dgrid-quota-keys").path
            for name in ["alice", "bob", "carol"] {
                try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", dir + "/" + name])
            }
        }

        func key(_ name: String) -> String { dir + "/" + name }

        /// A worker home trusting the three, with `policy` as its trust/policy.toml.
        func home(policy: String) throws -> ImageCLITests.Home {
            let home = try GridFixture.workerHome(requireSignatures: true)
            chmod(home.path, 0o700)
            try FileManager.default.createDirectory(atPath: home.path + "/trust", withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            var signers = ""
            for name in ["alice", "bob", "carol"] {
                signers += "\(name)@example.com " + (try String(contentsOfFile: key(name) + ".pub", encoding: .utf8))
            }
            FileManager.default.createFile(atPath: home.path + "/trust/allowed_signers", contents: Data(signers.utf8),
                                           attributes: [.posixPermissions: 0o644])
            try setPolicy(policy, in: home)
            return home
        }

        func setPolicy(_ policy: String, in home: ImageCLITests.Home) throws {
            let path = home.path + "/trust/policy.toml"
            try? FileManager.default.removeItem(atPath: path)
            FileManager.default.createFile(atPath: path, contents: Data(policy.utf8), attributes: [.posixPermissions: 0o600])
        }
    }

    static func events(_ home: ImageCLITests.Home) throws -> [[String: Any]] {
        let audit = try home.dgrid("audit", "--json")
        #expect(audit.status == 0, "\(audit.stderr)")
        return audit.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test func imagesMaximaAndSignersArePerPrincipalAndRefusedWithTheReason() throws {
        let keys = try Principals()
        let home = try keys.home(policy: """
            [principals."alice@example.com"]
            images = ["dgrid/busybox:*"]
            max_cpus = 1
            max_timeout_seconds = 30

            [principals."bob@example.com"]
            images = ["registry.example/bob/*"]

            [[signers]]
            priority = "critical"
            min_signers = 2
            """)
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let gridID = try #require(try GridFixture.status(home, url)["grid_id"] as? String)
        let dir = try TempDir.make(prefix: "dgrid-quota-tasks").path
        func task(_ id: String, _ extra: String = "", timeout: Int = 20, signers: [String]) throws -> String {
            try GridFixture.taskFile(dir, id, "echo ran-\(id)", timeout: timeout, extra: ",\"grid\":\"\(gridID)\"" + extra)
            for signer in signers {
                #expect(try home.dgrid("sign", "--key", keys.key(signer), dir + "/\(id).json").status == 0)
            }
            return dir + "/\(id).json"
        }
        let files = [
            try task("a-ok", signers: ["alice"]),
            try task("a-cpu", ",\"resources\":{\"cpus\":2}", signers: ["alice"]),
            try task("a-long", timeout: 60, signers: ["alice"]),
            try task("b-img", signers: ["bob"]),
            try task("a-crit", ",\"priority\":\"critical\"", signers: ["alice"]),
            try task("a-crit2", ",\"priority\":\"critical\"", signers: ["alice", "carol"]),
        ]
        // Pushed by a writer, past any submit-side check.
        var pushes: [(String, String)] = []
        for file in files {
            let name = (file as NSString).lastPathComponent
            pushes += [(file, "tasks/queue/" + name), (file + ".sig", "tasks/queue/" + name + ".sig")]
        }
        try GridFixture.push(repo, pushes)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "node_q", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let main = try GridFixture.mainFiles(repo)
        for id in ["a-ok", "a-crit2"] {
            #expect(main.contains("tasks/completed/node_q-\(id).json"), "\(id): \(main)")
        }
        let ran = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "tasks/completed/node_q-a-crit2.json.log").utf8)) as? [String: Any]
        #expect(ran?["signed_by"] as? [String] == ["alice@example.com", "carol@example.com"], "\(ran ?? [:])")
        let expected = [
            "a-cpu": "asks for cpus 2.0; principal \"alice@example.com\" may use at most 1.0",
            "a-long": "asks for timeout_seconds 60; principal \"alice@example.com\" may use at most 30",
            "b-img": "principal \"bob@example.com\" may not run image \"dgrid/busybox:latest\"",
            "a-crit": "needs 2 distinct trusted signers, has 1",
        ]
        for (id, reason) in expected {
            #expect(main.contains("tasks/rejected/\(id).json"), "\(id): \(main)")
            let text = try GridFixture.show(repo, "tasks/rejected/\(id).json.log")
            let record = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
            #expect((record["stderr"] as? String ?? "").contains(reason), "\(id): \(text)")
            // Nothing ran: no image resolved, no output of the script.
            #expect(record["image_digest"] is NSNull && !text.contains("ran-\(id)"), "\(id) ran: \(text)")
        }
        let events = try Self.events(home)
        #expect(events.contains { $0["event"] as? String == "image_refused" && $0["task_id"] as? String == "b-img" }, "\(events)")
        #expect(events.filter { $0["event"] as? String == "quota_refused" }.compactMap { $0["task_id"] as? String }.sorted() == ["a-cpu", "a-long"],
                "\(events)")

        // The same words from `dgrid submit`, before anything is pushed.
        let tip = try GridFixture.git(["--git-dir", repo, "rev-parse", "main"]).stdout
        try GridFixture.taskFile(dir, "b-img2", "echo no")
        let submit = try home.dgrid("submit", "--repo", url, "--sign", "--key", keys.key("bob"), dir + "/b-img2.json")
        #expect(submit.status != 0 && submit.stderr.contains("may not run image \"dgrid/busybox:latest\""), "\(submit.stderr)")
        try GridFixture.taskFile(dir, "a-cpu2", "echo no", extra: ",\"resources\":{\"cpus\":1.5}")
        let cpu = try home.dgrid("submit", "--repo", url, "--sign", "--key", keys.key("alice"), dir + "/a-cpu2.json")
        #expect(cpu.status != 0 && cpu.stderr.contains("asks for cpus 1.5"), "\(cpu.stderr)")
        #expect(try GridFixture.git(["--git-dir", repo, "rev-parse", "main"]).stdout == tip, "nothing pushed")
    }

    @Test func aBadPolicyStopsTheWorkerWithTheKeyNamed() throws {
        let keys = try Principals()
        let home = try keys.home(policy: "[principals.\"alice@example.com\"]\nmax_concurent_tasks = 2\n")
        let repo = try GridFixture.bareRepository()
        #expect(try home.dgrid("init", "--repo", "file://" + repo).status == 0)
        let worker = try home.dgrid("worker", "--repo", "file://" + repo, "--once")
        #expect(worker.status == 78 && worker.stderr.contains("unknown key \"max_concurent_tasks\""), "\(worker.stderr)")
    }

    /// 4 workers × 2 slots over `git daemon`: alice may run 2 tasks at once, bob
    /// may start 3 an hour, carol is unlimited. Measured from the tasks' own
    /// clocks (/proc/uptime at start and end), alice never runs more than 2 at
    /// once; bob's fourth task waits in the queue, neither lost nor rejected;
    /// carol's all run meanwhile. Raising bob's limit lets his waiting tasks run.
    @Test func fourWorkersKeepEachPrincipalsQuotaAndDeferredTasksRunLater() throws {
        let keys = try Principals()
        let policy = """
            [principals."alice@example.com"]
            max_concurrent_tasks = 2

            [principals."bob@example.com"]
            max_tasks_per_hour = 3
            """
        let homes = try (0..<4).map { _ in try keys.home(policy: policy) }
        let base = try TempDir.make(prefix: "dgrid-quota-daemon").path
        let repo = base + "/grid.git"
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", repo]).status == 0)
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        let started = try ProcessRunner.run(script, ["start", base, "\(Self.port)"])
        #expect(started.status == 0, "\(started.stderr)")
        defer { _ = try? ProcessRunner.run(script, ["stop", base]) }
        let url = "git://127.0.0.1:\(Self.port)/grid.git"
        #expect(try homes[0].dgrid("init", "--repo", url).status == 0)
        let timed = "read a b < /proc/uptime; echo start $a; sleep %d; read a b < /proc/uptime; echo end $a"
        let counts = ["alice": 6, "bob": 6, "carol": 8]
        for (name, count) in counts.sorted(by: { $0.key < $1.key }) {
            let dir = base + "/" + name
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for i in 0..<count {
                try GridFixture.taskFile(dir, "\(name)-\(i)", String(format: timed, name == "alice" ? 2 : 1))
            }
            let submitted = try homes[0].dgrid("submit", "--repo", url, "--sign", "--key", keys.key(name), dir)
            #expect(submitted.status == 0, "\(submitted.stderr)")
        }
        var workers: [Process] = []
        defer { for worker in workers where worker.isRunning { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() } }
        for (index, home) in homes.enumerated() {
            workers.append(try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "node_\(index)", "--slots", "2",
                                                         "--set", "poll_seconds=0.3", "--set", "poll_ceiling_seconds=1"],
                                                        home: home, log: base + "/worker\(index).log"))
        }
        func results() throws -> [String] {
            try GridFixture.refs(repo, "refs/dgrid/results").map { String($0.dropFirst("refs/dgrid/results/".count)) }
                + GridFixture.mainFiles(repo).filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix(".json") }
                    .map { String(($0 as NSString).lastPathComponent.dropLast(5).split(separator: "-", maxSplits: 1)[1]) }
        }
        // Everything but bob's last three.
        let drained = try GridFaultCLITests.waitUntil(180) { Set(try results()).count == 6 + 3 + 8 }
        let logs = (0..<4).map { (try? String(contentsOfFile: base + "/worker\($0).log", encoding: .utf8)) ?? "" }
        let seen = try results().sorted()
        #expect(drained, "\(seen)\n\(logs.joined(separator: "\n"))")
        // Bob's others stay queued, not rejected, for as long as the hour lasts.
        usleep(3_000_000)
        for worker in workers { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() }
        #expect(try homes[0].dgrid("fold", "--repo", url).status == 0)
        let main = try GridFixture.mainFiles(repo)
        let done = main.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix(".json") }
        #expect(done.filter { $0.contains("-bob-") }.count == 3, "\(done)")
        #expect(main.filter { $0.hasPrefix("tasks/queue/") && $0.contains("/bob-") && $0.hasSuffix(".json") }.count == 3, "\(main)")
        #expect(!main.contains { ($0.hasPrefix("tasks/rejected/") || $0.hasPrefix("tasks/failed/")) && $0.hasSuffix(".json") }, "\(main)")
        // Alice's tasks as their own clocks saw them: never more than two at once.
        var intervals: [(Double, Double)] = []
        for path in done where path.contains("-alice-") {
            let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path + ".log").utf8)) as? [String: Any]
            let words = (record?["stdout"] as? String ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard words.count == 4, let start = Double(words[1]), let end = Double(words[3]) else {
                Issue.record("\(path): \(record ?? [:])")
                continue
            }
            intervals.append((start, end))
        }
        #expect(intervals.count == 6)
        let most = intervals.map { probe in intervals.filter { $0.0 <= probe.0 && probe.0 < $0.1 }.count }.max() ?? 0
        print("alice: at most \(most) tasks at once (limit 2), over \(intervals.count) tasks")
        #expect(most <= 2 && most >= 1, "\(intervals)")
        // The deferral is on record, and `dgrid quota` says why bob waits.
        let deferred = try homes.flatMap { try Self.events($0) }.filter { $0["event"] as? String == "quota_deferred" }
        #expect(deferred.contains { ($0["task_id"] as? String ?? "").hasPrefix("bob-") && ($0["reason"] as? String ?? "").contains("max_tasks_per_hour") },
                "\(deferred)")
        let quota = try homes[0].dgrid("quota", "--repo", url, "--json")
        #expect(quota.status == 0, "\(quota.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(quota.stdout.utf8)) as? [String: Any]
        let bob = (report?["principals"] as? [[String: Any]])?.first { $0["principal"] as? String == "bob@example.com" }
        #expect(bob?["started_last_hour"] as? Int == 3 && bob?["queued"] as? Int == 3 && bob?["max_tasks_per_hour"] as? Int == 3
                && (bob?["waiting"] as? String ?? "").contains("max_tasks_per_hour"), "\(quota.stdout)")
        // The operator raises bob's rate: his waiting tasks run.
        try keys.setPolicy("[principals.\"bob@example.com\"]\nmax_tasks_per_hour = 6\n", in: homes[1])
        let later = try homes[1].dgrid("worker", "--repo", url, "--node-id", "node_1", "--slots", "2", "--once")
        #expect(later.status == 0, "\(later.stderr)")
        let after = try GridFixture.mainFiles(repo)
        #expect(after.filter { $0.hasPrefix("tasks/completed/") && $0.contains("-bob-") && $0.hasSuffix(".json") }.count == 6, "\(after)")
    }

    /// Sandbox security events reach the audit log: a fork refused at the pids limit.
    @Test func aTaskAtItsPidsLimitIsAudited() throws {
        let home = try GridFixture.workerHome()
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let dir = try TempDir.make(prefix: "dgrid-pids").path
        try GridFixture.taskFile(dir, "forky", "for i in $(seq 40); do sleep 2 & done; wait; true", timeout: 30, extra: ",\"resources\":{\"pids\":8}")
        #expect(try home.dgrid("submit", "--repo", url, dir + "/forky.json").status == 0)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "node_p", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let events = try Self.events(home).filter { $0["event"] as? String == "pids_limit_hit" }
        #expect(events.count == 1 && events.first?["task_id"] as? String == "forky", "\(events)")
    }
}
