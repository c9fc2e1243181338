import Foundation
import Synchronization
import Testing
import TestSupport

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(2)

/// Two workers on two "hosts" (separate state directories) drain one queue
/// over `git daemon` on loopback: every task is completed exactly once —
/// the D-GRID loop double-claimed 172 of 200 tasks with 4 workers here.
@Suite(.system, .serialized) struct GridRaceCLITests {
    static let port = suitePorts[0]
    static let script = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path

    /// `dgrid worker --once --slots 2` from every home at the same time, as node_<index>.
    static func runWorkersTogether(_ homes: [ImageCLITests.Home], url: String) -> [CLI.Result?] {
        let results = Mutex<[CLI.Result?]>(Array(repeating: nil, count: homes.count))
        let group = DispatchGroup()
        for (index, home) in homes.enumerated() {
            group.enter()
            Thread {
                let r = try? home.dgrid("worker", "--repo", url, "--node-id", "node_\(index)", "--slots", "2", "--once")
                results.withLock { $0[index] = r }
                group.leave()
            }.start()
        }
        group.wait()
        return results.withLock { $0 }
    }

    /// docs/ARCHITECTURE.md §6 at issue scale: 4 workers × 2 slots on 200 tasks. "No claim
    /// won twice" is read twice: from the server's own history of every claim
    /// ref it accepted (a post-receive hook logs each update; the fold deletes
    /// the refs, and git drops a deleted ref's reflog) and from the claimants'
    /// logs — every task claimed once, at attempt 1. Refs the protocol does not
    /// know (odd names under refs/dgrid/) are ignored.
    @Test func fourWorkersTimesTwoSlotsClaimEachTaskOnce() throws {
        let base = try TempDir.make(prefix: "dgrid-daemon4").path
        let repo = base + "/grid.git"
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", repo]).status == 0)
        // A port of its own the kernel picked, not the next number (which anything may hold).
        let port = suitePorts[1]
        #expect(try ProcessRunner.run(Self.script, ["start", base, "\(port)"]).status == 0)
        defer { _ = try? ProcessRunner.run(Self.script, ["stop", base]) }
        let url = "git://127.0.0.1:\(port)/grid.git"
        let homes = try (0..<4).map { _ in try GridFixture.workerHome() }
        #expect(try homes[0].dgrid("init", "--repo", url).status == 0)
        let tasks = base + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        let count = 200
        for i in 0..<count { try GridFixture.taskFile(tasks, "t\(i)", "echo \(i)") }
        #expect(try homes[0].dgrid("submit", "--repo", url, tasks).status == 0)
        // The server's record of every ref update it accepted, in order.
        let history = base + "/accepted-updates"
        let hook = repo + "/hooks/post-receive"
        try "#!/bin/sh\ncat >> '\(history)'\n".write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        // A writer's refs that name no valid task, node or protocol slot.
        let main = try GridFixture.git(["--git-dir", repo, "rev-parse", "main"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for name in ["refs/dgrid/claims/a+b", "refs/dgrid/results/x/y", "refs/dgrid/unknown/z", "refs/dgrid/nodes/bad+node"] {
            #expect(try GridFixture.git(["--git-dir", repo, "update-ref", name, main]).status == 0)
        }

        var claims: [String: Int] = [:]
        for r in Self.runWorkersTogether(homes, url: url) {
            #expect(r?.status == 0, "\(r?.stderr ?? "no result")")
            for line in (r?.stderr ?? "").split(separator: "\n") where line.contains(" claimed ") {
                #expect(line.contains("attempt=1"), "\(line)")
                if let task = line.split(separator: " ").first(where: { $0.hasPrefix("task=") }) {
                    claims[String(task.dropFirst(5)), default: 0] += 1
                }
            }
        }
        #expect(claims.count == count, "every task claimed")
        #expect(claims.values.allSatisfy { $0 == 1 }, "claimed twice: \(claims.filter { $0.value > 1 })")
        // Server side: each claim ref created exactly once, never moved to a second owner's commit.
        var created: [String: Int] = [:]
        var movedBetweenOwners: [String] = []
        let zero = String(repeating: "0", count: 40)
        for line in (try String(contentsOfFile: history, encoding: .utf8)).split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count == 3, fields[2].hasPrefix("refs/dgrid/claims/t") else { continue }
            let task = String(fields[2].dropFirst("refs/dgrid/claims/".count))
            if fields[0] == zero && fields[1] != zero { created[task, default: 0] += 1 }
            if fields[0] != zero && fields[1] != zero {
                // A renewal is fine; a takeover would carry another node's name.
                let record = try GridFixture.git(["--git-dir", repo, "cat-file", "-p", fields[1] + ":claim.json"]).stdout
                let fields = try JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any]
                if fields?["attempt"] as? Int != 1 { movedBetweenOwners.append(task) }
            }
        }
        #expect(created.count == count, "server accepted claims for \(created.count) of \(count) tasks")
        #expect(created.values.allSatisfy { $0 == 1 }, "created twice on the server: \(created.filter { $0.value > 1 })")
        #expect(movedBetweenOwners.isEmpty, "taken over: \(movedBetweenOwners)")
        #expect(try homes[0].dgrid("fold", "--repo", url).status == 0)
        let files = try GridFixture.mainFiles(repo)
        #expect(files.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix(".json") }.count == count)
        #expect(!files.contains { $0.hasPrefix("tasks/late/") || $0.hasPrefix("tasks/rejected/") && $0.hasSuffix(".json") })
        #expect(!files.contains { $0.contains("a+b") || $0.contains("bad+node") })
        // Unknown refs are left alone, neither folded nor deleted.
        #expect(try GridFixture.refs(repo, "refs/dgrid/unknown") == ["refs/dgrid/unknown/z"])
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims") == ["refs/dgrid/claims/a+b"])
    }

    @Test func twoWorkersOverGitDaemonCompleteEachTaskOnce() throws {
        let base = try TempDir.make(prefix: "dgrid-daemon").path
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", base + "/grid.git"]).status == 0)
        let started = try ProcessRunner.run(Self.script, ["start", base, "\(Self.port)"])
        #expect(started.status == 0, "\(started.stderr)")
        defer { _ = try? ProcessRunner.run(Self.script, ["stop", base]) }
        let url = "git://127.0.0.1:\(Self.port)/grid.git"

        let homes = [try GridFixture.workerHome(), try GridFixture.workerHome()]
        #expect(try homes[0].dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-race-tasks").path
        let count = 16
        for i in 0..<count { try GridFixture.taskFile(tasks, "t\(i)", "echo \(i)") }
        #expect(try homes[0].dgrid("submit", "--repo", url, tasks).status == 0)

        for r in Self.runWorkersTogether(homes, url: url) {
            #expect(r?.status == 0, "\(r?.stderr ?? "no result")")
        }
        // A last fold in case both workers' own folds raced.
        #expect(try homes[0].dgrid("fold", "--repo", url).status == 0)
        let files = try GridFixture.mainFiles(base + "/grid.git")
        for i in 0..<count {
            let done = files.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix("-t\(i).json") }
            #expect(done.count == 1, "t\(i): \(done)")
        }
        #expect(!files.contains { $0.hasPrefix("tasks/late/") }, "no task ran to completion twice")
        #expect(!files.contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") })
        #expect(files.contains("nodes/node_0.json") && files.contains("nodes/node_1.json"))
    }
}
