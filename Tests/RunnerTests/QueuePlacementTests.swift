import Testing
import TestSupport
@testable import Runner

/// Every file under tasks/queue/ gets one answer (docs/ARCHITECTURE.md §6): a
/// task in dgrid's layout or D-GRID's, a placeholder, or unplaceable with why.
@Suite(.unit) struct QueuePlacementTests {
    @Test(arguments: [
        ("tasks/queue/t1.json", "t1", nil, nil),
        ("tasks/queue/normal/6/t1.json", "t1", TaskPriority.normal, 6),
        ("tasks/queue/high/t1.json", "t1", .high, nil),
        ("tasks/queue/high-priority/t1.json", "t1", .high, nil),
        ("tasks/queue/high-priority/shard-3/t1.json", "t1", .high, 3),
        ("tasks/queue/critical/shard-0/t1.json", "t1", .critical, 0),
    ] as [(String, String, TaskPriority?, Int?)])
    func readablePlacementsAreTasks(path: String, id: String, priority: TaskPriority?, shard: Int?) {
        #expect(QueuePlacement.of(path: path) == .task(QueueLocation(path: path, taskID: id, priority: priority, shard: shard)))
    }

    @Test(arguments: [
        ("tasks/queue/normal/6/bad id.json", "is not a valid task id"),
        ("tasks/queue/a/b/c/deep.json", "at an unknown depth"),
        ("tasks/queue/notes.txt", "is not a task file"),
        ("tasks/queue/urgent/t1.json", "is not a priority directory"),
        ("tasks/queue/high/017/t1.json", "is not a shard directory"),
        ("tasks/queue/high/shard-x/t1.json", "is not a shard directory"),
        ("tasks/queue/..json", "is not a valid task id"),
    ])
    func everythingElseIsUnplaceableWithAReason(path: String, reason: String) {
        guard case .unplaceable(let why)? = QueuePlacement.of(path: path) else {
            Issue.record("\(path) was not refused: \(String(describing: QueuePlacement.of(path: path)))")
            return
        }
        #expect(why.contains(reason), "\(path): \(why)")
    }

    @Test func placeholdersAndOtherFoldersAreNoTasks() {
        #expect(QueuePlacement.of(path: "tasks/queue/.gitkeep") == .placeholder)
        #expect(QueuePlacement.of(path: "tasks/queue/high/3/.gitkeep") == .placeholder)
        #expect(QueuePlacement.of(path: "tasks/completed/n-t1.json") == nil)
    }
}
