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

        let results = Mutex<[CLI.Result?]>([nil, nil])
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
        for r in results.withLock({ $0 }) {
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
