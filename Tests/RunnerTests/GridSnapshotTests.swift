import Testing
@testable import Runner
import TestSupport

/// What workers and folds read off main and the refs: names are a hostile
/// writer's, so only recognised paths and valid ids count.
@Suite(.unit) struct GridSnapshotTests {
    static let blob = GitOID(hex: String(repeating: "a", count: 40))!

    static func snapshot(_ paths: [String], claims: [String] = [], results: [String] = [], nodes: [String] = []) -> GridSnapshot {
        GridSnapshot(mainTip: blob, files: Dictionary(uniqueKeysWithValues: paths.map { ($0, blob) }),
                     claims: Dictionary(uniqueKeysWithValues: claims.map { ($0, blob) }),
                     results: Dictionary(uniqueKeysWithValues: results.map { ($0, blob) }),
                     nodes: Dictionary(uniqueKeysWithValues: nodes.map { ($0, blob) }))
    }

    @Test func finishedTasksAreReadFromNamesAtTheFirstDash() {
        let s = Self.snapshot(["nodes/w1.json", "tasks/completed/w1-job-7.json", "tasks/completed/w1-job-7.json.log",
                               "tasks/failed/w2-x.json", "tasks/rejected/bad.json", "tasks/queue/7.json", "tasks/queue/job-7.json"])
        #expect(Set(s.finishedTaskIDs.onMain.taskIDs) == ["job-7", "x", "bad"])
        // "7" is not finished: w1-job-7 is task job-7 on w1, and no node id holds '-'.
        // job-7's queue file beside its result is a replay: set aside, not queued.
        #expect(s.queue.map(\.taskID).sorted() == ["7"])
        #expect(s.unplaced.map(\.path) == ["tasks/queue/job-7.json"] && s.unplaced.first?.reason.contains("a replay") == true)
        #expect(s.foldedLogs(of: "job-7") == [Self.blob])
        #expect(s.foldedLogs(of: "7").isEmpty)
        #expect(s.finishedPaths(of: "job-7") == ["tasks/completed/w1-job-7.json"])
        #expect(s.finishedPaths(of: "7").isEmpty)
    }

    /// The old reader took every in_progress name ending in `-7` for task 7,
    /// and guessed at names whose node it did not know.
    @Test func inProgressRecordsAreFoundByTheirExactNameNeverBySuffix() {
        let s = Self.snapshot(["tasks/in_progress/w1-job-7.json", "tasks/in_progress/w2-7.json", "tasks/in_progress/w3-x-7.json",
                               "tasks/in_progress/w1-job-7.json.log", "tasks/in_progress/w1-job-7", "tasks/in_progress/-7.json",
                               "tasks/in_progress/7.json", "tasks/in_progress/sub/w1-7.json"],
                              claims: ["job-7"])
        #expect(s.inProgressPaths(of: "7") == ["tasks/in_progress/w2-7.json"])
        #expect(s.inProgressPaths(of: "job-7") == ["tasks/in_progress/w1-job-7.json"])
        #expect(s.inProgressPaths(of: "x-7") == ["tasks/in_progress/w3-x-7.json"])
        #expect(s.inProgressPaths(of: "job").isEmpty && s.inProgressPaths(of: "-7").isEmpty)
        // What the picker may take over: each file stands for one task.
        #expect(TaskPicker.claimable(s).map(\.taskID).sorted() == ["7", "job-7", "x-7"])
        #expect(TaskPicker.claimable(s).first { $0.taskID == "job-7" }?.path == "tasks/in_progress/w1-job-7.json")
    }

    @Test func hostileNamesAreIgnored() {
        let s = Self.snapshot(["tasks/queue/../x.json", "tasks/queue/a/b/c/d.json", "tasks/queue/.json", "tasks/queue/ok.json",
                               "tasks/in_progress/n-ok.json", "tasks/completed/sub/dir/n-z.json"])
        #expect(s.queue.map(\.taskID) == ["ok"])
        #expect(s.inProgressPaths(of: "ok") == ["tasks/in_progress/n-ok.json"])
        #expect(!s.finishedTaskIDs.contains("z"))
    }

    @Test func spreadNeverBreaksPriorityOrder() {
        func candidate(_ id: String, _ priority: TaskPriority) -> QueueCandidate {
            QueueCandidate(location: LedgerLayout.queueEntry(path: "tasks/queue/\(id).json")!, priority: priority, createdAt: id)
        }
        let ordered = [candidate("c1", .critical), candidate("c2", .critical)] + (1...6).map { candidate("n\($0)", .normal) }
        for _ in 0..<50 {
            let spread = TaskPicker.spread(ordered)
            #expect(Set(spread.prefix(2).map(\.location.taskID)) == ["c1", "c2"])
            #expect(spread.dropFirst(2).map(\.location.taskID) == (1...6).map { "n\($0)" })
            #expect(spread.count == ordered.count)
        }
    }

    /// A fleet spreads over a head as wide as itself (4 to 256 tasks): a hundred workers over a
    /// head of four lost most claim pushes to each other; the order past the head is kept.
    @Test func theSpreadWidensWithTheFleet() {
        #expect(TaskPicker.spreadWindow(nodes: 1) == 4 && TaskPicker.spreadWindow(nodes: 100) == 100)
        #expect(TaskPicker.spreadWindow(nodes: 10_000) == 256)
        let ordered = (1...300).map { QueueCandidate(location: LedgerLayout.queueEntry(path: "tasks/queue/t\($0).json")!,
                                                      priority: .normal, createdAt: "\($0)") }
        var firsts: Set<String> = []
        for _ in 0..<200 {
            let spread = TaskPicker.spread(ordered, window: TaskPicker.spreadWindow(nodes: 100))
            #expect(Set(spread.prefix(100).map(\.location.taskID)) == Set((1...100).map { "t\($0)" }))
            #expect(spread.dropFirst(100).map(\.location.taskID) == (101...300).map { "t\($0)" })
            firsts.insert(spread[0].location.taskID)
        }
        #expect(firsts.count > 50, "two hundred picks tried \(firsts.count) different tasks first")
    }

    @Test func workersPreferDifferentQuartersOfTheShards() {
        let a = GridSettings.defaultShards(nodeID: "node_a", shardCount: 16)
        #expect(a.count == 4)
        #expect(a.allSatisfy { (0..<16).contains($0) })
        #expect(GridSettings.defaultShards(nodeID: "node_a", shardCount: 1) == [0])
    }
}
