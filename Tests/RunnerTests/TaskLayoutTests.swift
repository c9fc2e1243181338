import Testing
@testable import Runner
import TestSupport

@Suite("Ledger layout", .unit)
struct TaskLayoutTests {
    @Test func pathsUseDGridNames() {
        #expect(LedgerLayout.queuePath(priority: .high, shard: 3, taskID: "t1") == "tasks/queue/high/3/t1.json")
        #expect(LedgerLayout.flatQueuePath(taskID: "t1") == "tasks/queue/t1.json")
        #expect(LedgerLayout.inProgressPath(node: "n1", taskID: "t-1") == "tasks/in_progress/n1-t-1.json")
        #expect(LedgerLayout.completedPath(node: "n1", taskID: "t1") == "tasks/completed/n1-t1.json")
        #expect(LedgerLayout.logPath(for: LedgerLayout.completedPath(node: "n1", taskID: "t1")) == "tasks/completed/n1-t1.json.log")
        #expect(LedgerLayout.failedPath(node: "n1", taskID: "t1") == "tasks/failed/n1-t1.json")
        #expect(LedgerLayout.rejectedPath(taskID: "t1") == "tasks/rejected/t1.json")
        #expect(LedgerLayout.nodePath(node: "n1") == "nodes/n1.json")
        #expect(LedgerLayout.logSuffix == ".log")
        #expect(LedgerLayout.claimRef(taskID: "t1") == "refs/dgrid/claims/t1")
        #expect(LedgerLayout.resultRef(taskID: "t1") == "refs/dgrid/results/t1")
        #expect(LedgerLayout.nodeRef(node: "n1") == "refs/dgrid/nodes/n1")
    }

    @Test(arguments: TaskPriority.allCases)
    func shardedQueuePathRoundTrips(priority: TaskPriority) throws {
        for (id, shard) in [("a", 0), ("build.42", 15), ("x_y-z", 999_999)] {
            let path = LedgerLayout.queuePath(priority: priority, shard: shard, taskID: id)
            let entry = try #require(LedgerLayout.queueEntry(path: path))
            #expect(entry == QueueLocation(path: path, taskID: id, priority: priority, shard: shard))
        }
    }

    @Test func flatDGridQueuePathIsRead() throws {
        let entry = try #require(LedgerLayout.queueEntry(path: "tasks/queue/hello.json"))
        #expect(entry == QueueLocation(path: "tasks/queue/hello.json", taskID: "hello", priority: nil, shard: nil))
        #expect(LedgerLayout.queueEntry(path: LedgerLayout.flatQueuePath(taskID: "x.y"))?.taskID == "x.y")
    }

    @Test(arguments: [
        "tasks/queue/.json", "tasks/queue/..json", "tasks/queue/.hidden.json", "tasks/queue/-x.json",
        "tasks/queue/a..b.json", "tasks/queue/a b.json", "tasks/queue/a\nb.json", "tasks/queue/a.json.sig",
        "tasks/queue/a.JSON", "tasks/queue/a", "tasks/queue/.gitkeep", "tasks/queue/README.md",
        "tasks/queue/urgent/0/a.json", "tasks/queue/High/0/a.json",
        "tasks/queue/high/01/a.json", "tasks/queue/high/-1/a.json", "tasks/queue/high/+1/a.json",
        "tasks/queue/high/1000000/a.json", "tasks/queue/high//a.json", "tasks/queue/high/0/sub/a.json",
        "tasks/queue/high/0/../a.json", "tasks/queue//a.json", "tasks/queue/", "/tasks/queue/a.json",
        "./tasks/queue/a.json", "tasks/in_progress/n-a.json", "tasks/queueX/a.json",
        "tasks/queue/" + String(repeating: "a", count: 129) + ".json", "tasks/queue/x.lock.json",
    ])
    func otherNamesAreIgnored(path: String) {
        #expect(LedgerLayout.queueEntry(path: path) == nil)
    }

    @Test(arguments: [
        ("node_1", true), ("node-1", false), ("worker.eu_2", true), (String(repeating: "n", count: 64), true),
        (String(repeating: "n", count: 65), false), ("", false), ("../n", false), ("n/1", false), (".n", false),
    ])
    func nodeIDRule(id: String, valid: Bool) {
        #expect(LedgerLayout.isValidNodeID(id) == valid)
    }
}

@Suite("Queue order and shards", .unit)
struct TaskQueueOrderTests {
    /// Fixed FNV-1a 64 values (checked against the published test vector for "a" and
    /// computed independently), so a change of hash or platform fails here.
    @Test(arguments: [
        ("", 16, 5), ("a", 16, 12), ("hello", 16, 11), ("task-001", 16, 14), ("build.42", 16, 1),
        ("a", 7, 5), ("task-001", 256, 206), ("build.42", 256, 81), ("réseau", 7, 4),
    ])
    func shardIsStable(id: String, count: Int, shard: Int) {
        #expect(ShardPolicy.shard(of: id, count: count) == shard)
    }

    @Test func hashMatchesTheFNVVector() {
        #expect(ShardPolicy.fnv1a64("".utf8) == 0xcbf2_9ce4_8422_2325)
        #expect(ShardPolicy.fnv1a64("a".utf8) == 0xaf63_dc4c_8601_ec8c)
    }

    @Test func oneShardOrNoneIsShardZero() {
        #expect(ShardPolicy.shard(of: "hello", count: 1) == 0)
        #expect(ShardPolicy.shard(of: "hello", count: 0) == 0)
        #expect(ShardPolicy.shard(of: "hello", count: -3) == 0)
    }

    @Test func shardsSpreadIDs() {
        let shards = Set((0..<200).map { ShardPolicy.shard(of: "task-\($0)", count: 8) })
        #expect(shards == Set(0..<8))
    }

    @Test func priorityNamesSortCriticalFirst() {
        #expect(TaskPriority.allCases.sorted() == [.critical, .high, .normal, .low])
        #expect(TaskPriority.critical < .low)
        #expect(!(TaskPriority.low < .high))
    }

    private func candidate(_ id: String, _ priority: TaskPriority, _ createdAt: String = "") -> QueueCandidate {
        QueueCandidate(location: QueueLocation(path: "tasks/queue/\(id).json", taskID: id, priority: nil, shard: nil),
                       priority: priority, createdAt: createdAt)
    }

    @Test func priorityThenFIFOThenID() {
        let input = [
            candidate("n-late", .normal, "2026-11-29T10:05:00Z"),
            candidate("l-early", .low, "2026-11-29T09:00:00Z"),
            candidate("n-undated", .normal),
            candidate("c-late", .critical, "2026-11-29T11:00:00Z"),
            candidate("n-b", .normal, "2026-11-29T10:00:00Z"),
            candidate("n-a", .normal, "2026-11-29T10:00:00Z"),
            candidate("h", .high, "2026-11-29T12:00:00Z"),
        ]
        let ids = QueueOrder.order(input, shardCount: 1, ownShards: []).map(\.taskID)
        #expect(ids == ["c-late", "h", "n-a", "n-b", "n-late", "n-undated", "l-early"])
        // Input order does not matter.
        #expect(QueueOrder.order(input.reversed(), shardCount: 1, ownShards: []).map(\.taskID) == ids)
    }

    @Test func ownShardsFirstWithinAPriorityThenStealing() {
        // With 16 shards: "a"→12, "hello"→11, "task-001"→14, "build.42"→1.
        let input = [
            candidate("a", .normal, "2026-01-01T00:00:01Z"),
            candidate("hello", .normal, "2026-01-01T00:00:02Z"),
            candidate("task-001", .normal, "2026-01-01T00:00:03Z"),
            candidate("build.42", .normal, "2026-01-01T00:00:04Z"),
        ]
        let ids = QueueOrder.order(input, shardCount: 16, ownShards: [14, 1]).map(\.taskID)
        #expect(ids == ["task-001", "build.42", "a", "hello"])
        // No own shard: plain FIFO, every task still offered (stealing).
        #expect(QueueOrder.order(input, shardCount: 16, ownShards: []).map(\.taskID) == ["a", "hello", "task-001", "build.42"])
    }

    @Test func shardPreferenceNeverOverridesPriority() {
        // A critical task in someone else's shard beats a low task in ours: a dead
        // worker's shard must not starve urgent work.
        let input = [candidate("task-001", .low), candidate("a", .critical)]
        let ids = QueueOrder.order(input, shardCount: 16, ownShards: [14]).map(\.taskID)
        #expect(ids == ["a", "task-001"])
    }
}
