import Foundation
import Synchronization
import Testing
import TestSupport

/// Two workers on two "hosts" (separate state directories) drain one queue
/// over `git daemon` on loopback: every task is completed exactly once —
/// the D-GRID loop double-claimed 172 of 200 tasks with 4 workers here.
@Suite(.serialized) struct GridRaceCLITests {
    static let port = 19473
    static let script = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path

    /// `dgrid worker --once --slots 2` from every home at the same time, as node-<index>.
    static func runWorkersTogether(_ homes: [ImageCLITests.Home], url: String) -> [CLI.Result?] {
        let results = Mutex<[CLI.Result?]>(Array(repeating: nil, count: homes.count))
        let group = DispatchGroup()
        for (index, home) in homes.enumerated() {
            group.enter()
            Thread {
                let r = try? home.dgrid("worker", "--repo", url, "--node-id", "node-\(index)", "--slots", "2", "--once")
                results.withLock { $0[index] = r }
                group.leave()
            }.start()
        }
        group.wait()
        return results.withLock { $0 }
    }

    /// DESIGN §6 at issue scale: 4 workers × 2 slots. "No claim won twice" is
    /// read from the claimants' own logs: every task claimed once, at attempt 1.
    /// Refs the protocol does not know (odd names under refs/dgrid/) are ignored.
    @Test func fourWorkersTimesTwoSlotsClaimEachTaskOnce() throws {
        let base = NSTemporaryDirectory() + "dgrid-daemon4-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let repo = base + "/grid.git"
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", repo]).status == 0)
        let port = Self.port + 1
        #expect(try ProcessRunner.run(Self.script, ["start", base, "\(port)"]).status == 0)
        defer { _ = try? ProcessRunner.run(Self.script, ["stop", base]) }
        let url = "git://127.0.0.1:\(port)/grid.git"
        let homes = try (0..<4).map { _ in try GridFixture.workerHome() }
        #expect(try homes[0].dgrid("init", "--repo", url).status == 0)
        let tasks = base + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        let count = 100
        for i in 0..<count { try GridFixture.taskFile(tasks, "t\(i)", "echo \(i)") }
        #expect(try homes[0].dgrid("submit", "--repo", url, tasks).status == 0)
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
        let base = NSTemporaryDirectory() + "dgrid-daemon-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", base + "/grid.git"]).status == 0)
        let started = try ProcessRunner.run(Self.script, ["start", base, "\(Self.port)"])
        #expect(started.status == 0, "\(started.stderr)")
        defer { _ = try? ProcessRunner.run(Self.script, ["stop", base]) }
        let url = "git://127.0.0.1:\(Self.port)/grid.git"

        let homes = [try GridFixture.workerHome(), try GridFixture.workerHome()]
        #expect(try homes[0].dgrid("init", "--repo", url).status == 0)
        let tasks = NSTemporaryDirectory() + "dgrid-race-tasks-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
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
        #expect(files.contains("nodes/node-0.json") && files.contains("nodes/node-1.json"))
    }
}
