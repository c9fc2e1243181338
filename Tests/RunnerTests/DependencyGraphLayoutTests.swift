import Testing
@testable import Runner
import TestSupport

private func task(_ id: String, _ dependsOn: [String] = [], _ state: GridDAG.State = .completed) -> GridDAG.Task {
    GridDAG.Task(id: id, state: state, dependsOn: dependsOn, dependencyMode: nil, reason: nil)
}

private func ids(_ layout: DependencyGraphLayout) -> [[String]] { layout.boxes.map(\.members) }

/// The dashboard's graph (docs/ARCHITECTURE.md §12): fan-outs folded into
/// summary boxes, at most `graphNodes` boxes, every box below its dependencies.
@Suite("Dashboard graph layout: folding and levels", .unit)
struct DependencyGraphLayoutTests {
    @Test func aSplitIntoAThousandShardsAndAJoinIsTenBoxes() {
        let shards = (0..<1000).map { String(format: "shard-%04d", $0) }
        var tasks = [task("split")] + shards.enumerated().map { task($1, ["split"], $0 < 900 ? .completed : .running) }
        tasks.append(task("join", shards, .waiting))
        let layout = DependencyGraphLayout(tasks: tasks, limits: .standard)
        #expect(layout.taskCount == 1002)
        #expect(layout.boxes.count == 10, "split, 7 shards, one summary, join: \(ids(layout).map(\.count))")
        let summary = try! #require(layout.boxes.first { $0.isSummary })
        #expect(summary.members.count == 993 && summary.members.first == "shard-0007")
        #expect(summary.states == [.completed: 893, .running: 100] && summary.state == .completed)
        #expect(layout.summaryBoxes == 1 && layout.summarizedTasks == 993)
        #expect(layout.edges.count == 16 && layout.edgeCount == 16, "split→8 boxes, 8 boxes→join")
        let levels = Dictionary(uniqueKeysWithValues: layout.boxes.map { ($0.members[0], $0.level) })
        #expect(levels["split"] == 0 && levels["shard-0000"] == 1 && levels["shard-0007"] == 1 && levels["join"] == 2)
        for edge in layout.edges { #expect(layout.boxes[edge.from].y < layout.boxes[edge.to].y, "every arrow points down") }
    }

    @Test func aChainPerShardFoldsIntoAChainOfSummaries() {
        var tasks = [task("split")]
        tasks += (0..<100).map { task("shard-\($0)", ["split"]) }
        tasks += (0..<100).map { task("post-\($0)", ["shard-\($0)"], .ready) }
        let layout = DependencyGraphLayout(tasks: tasks, limits: .standard)
        let summaries = layout.boxes.filter(\.isSummary)
        #expect(summaries.count == 2, "\(ids(layout).map(\.count))")
        #expect(summaries.map(\.members.count).sorted() == [93, 93])
        #expect(layout.boxes.count == 1 + 7 + 7 + 2, "split, 7 shards and their posts, two summaries")
        let shardSummary = layout.boxes.firstIndex { $0.isSummary && $0.members[0].hasPrefix("shard") }!
        let postSummary = layout.boxes.firstIndex { $0.isSummary && $0.members[0].hasPrefix("post") }!
        #expect(layout.edges.contains(.init(from: shardSummary, to: postSummary)))
    }

    @Test func aWideJoinFoldsItsRoots() {
        let roots = (0..<500).map { "in-\($0)" }
        let layout = DependencyGraphLayout(tasks: roots.map { task($0) } + [task("join", roots, .ready)], limits: .standard)
        #expect(layout.boxes.count == 9 && layout.summarizedTasks == 493)
    }

    @Test func pastTheBoxLimitTheRestShareOneBox() {
        // 500 separate pairs: no fan-out to fold, so the box limit does it.
        var tasks: [GridDAG.Task] = []
        for i in 0..<500 { tasks += [task("a-\(i)"), task("b-\(i)", ["a-\(i)"])] }
        var limits = DashboardLimits.standard
        limits.graphNodes = 40
        let layout = DependencyGraphLayout(tasks: tasks, limits: limits)
        #expect(layout.boxes.count == 40)
        let overflow = layout.boxes.filter(\.overflow)
        #expect(overflow.count == 1 && overflow[0].members.count == 1000 - 39)
        #expect(layout.edgeCount <= 39 + 39, "edges run between the drawn boxes and the overflow box only")
    }

    @Test func edgesPastTheLimitAreCountedNotDrawn() {
        // Every task depends on every earlier one: 20 boxes, 190 edges.
        let tasks = (0..<20).map { i in task("t\(i)", (0..<i).map { "t\($0)" }) }
        var limits = DashboardLimits.standard
        limits.graphEdges = 50
        let layout = DependencyGraphLayout(tasks: tasks, limits: limits)
        #expect(layout.boxes.count == 20 && layout.edgeCount == 190 && layout.edges.count == 50)
        #expect(Set(layout.boxes.map(\.level)) == Set(0..<20), "a level each")
    }

    @Test func aCycleIsDrawnBelowEverythingElse() {
        let tasks = [task("root"), task("a", ["root", "b"], .blocked), task("b", ["a"], .blocked), task("c", ["root"], .ready)]
        let layout = DependencyGraphLayout(tasks: tasks, limits: .standard)
        #expect(layout.boxes.count == 4)
        let levels = Dictionary(uniqueKeysWithValues: layout.boxes.map { ($0.members[0], $0.level) })
        #expect(levels["root"] == 0 && levels["c"] == 1 && levels["a"] == 2 && levels["b"] == 2)
    }

    @Test func aWideLevelWrapsIntoRowsOfSix() {
        // Fifteen roots with dependents of their own: nothing folds, and one level holds them.
        let tasks = (0..<15).map { task("r\($0)") } + (0..<15).map { task("d\($0)", ["r\($0)"]) }
        let layout = DependencyGraphLayout(tasks: tasks, limits: .standard)
        let rows = Set(layout.boxes.filter { $0.level == 0 }.map(\.y))
        #expect(rows.count == 3 && layout.width == 2 * 12 + 6 * 168 + 5 * 20)
        let lowest = layout.boxes.filter { $0.level == 0 }.map(\.y).max()!
        #expect(layout.boxes.filter { $0.level == 1 }.allSatisfy { $0.y > lowest })
    }

    @Test func anEmptyGraphHasNoBoxes() {
        let layout = DependencyGraphLayout(tasks: [], limits: .standard)
        #expect(layout.boxes.isEmpty && layout.width == 0)
    }
}
