import Testing
@testable import Runner

/// What workers and folds read off main and the refs: names are a hostile
/// writer's, so only recognised paths and valid ids count.
@Suite struct GridSnapshotTests {
    static let blob = GitOID(hex: String(repeating: "a", count: 40))!

    static func snapshot(_ paths: [String], claims: [String] = [], results: [String] = [], nodes: [String] = []) -> GridSnapshot {
        GridSnapshot(mainTip: blob, files: Dictionary(uniqueKeysWithValues: paths.map { ($0, blob) }),
                     claims: Dictionary(uniqueKeysWithValues: claims.map { ($0, blob) }),
                     results: Dictionary(uniqueKeysWithValues: results.map { ($0, blob) }),
                     nodes: Dictionary(uniqueKeysWithValues: nodes.map { ($0, blob) }))
    }

    @Test func finishedTasksUseKnownNodeNamesToSplitNodeAndTask() {
        let s = Self.snapshot(["nodes/node-a.json", "tasks/completed/node-a-b-c.json", "tasks/completed/node-a-b-c.json.log",
                               "tasks/failed/node-a-x.json", "tasks/rejected/bad.json", "tasks/queue/b-c.json", "tasks/queue/c.json"])
        #expect(s.finishedTaskIDs == ["b-c", "x", "bad"])
        // "c" is not taken for finished: the known node "node-a" decides the split.
        #expect(s.queue.map(\.taskID).sorted() == ["b-c", "c"])
        #expect(s.foldedLogs(of: "b-c") == [Self.blob])
        #expect(s.foldedLogs(of: "c").isEmpty)
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

    @Test func workersPreferDifferentQuartersOfTheShards() {
        let a = GridSettings.defaultShards(nodeID: "node-a", shardCount: 16)
        #expect(a.count == 4)
        #expect(a.allSatisfy { (0..<16).contains($0) })
        #expect(GridSettings.defaultShards(nodeID: "node-a", shardCount: 1) == [0])
    }
}
