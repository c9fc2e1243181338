/// The dependency graph as the dashboard draws it (docs/ARCHITECTURE.md §12):
/// `GridDAG`'s tasks folded into at most `DashboardLimits.graphNodes` boxes,
/// placed in levels (every box below the boxes it depends on). Pure: no Git,
/// no markup, so its rules are tested on their own (`DependencyGraphLayoutTests`).
///
/// A grid's graphs are mostly fan-outs — a split into 10,000 shards, a join —
/// and a box per task would draw nothing readable. So, until nothing changes:
/// boxes that share the very same dependencies and dependents, past
/// `graphFanOut` of them, are folded into one summary box (the shards of a
/// split and join, the roots of a join); and past `graphFanOut` boxes that
/// hang off one box alone, the rest are folded the same way (a chain per shard
/// becomes a chain of summaries). The first `graphFanOut - 1` keep their own
/// boxes, except below a summary box, whose tasks' next steps share one box. What is still past `graphNodes` goes into one last summary box. The
/// page says how many tasks each summary holds, by state.
struct DependencyGraphLayout: Sendable {
    struct Box: Sendable {
        /// The task ids it stands for, in dependency order; one for a task's own box.
        let members: [String]
        /// Its tasks by state.
        let states: [GridDAG.State: Int]
        /// Folded by `graphNodes` rather than by a fan-out: "not drawn".
        let overflow: Bool
        /// Level (0: depends on nothing drawn), and place: top-left corner in pixels.
        var level = 0
        var x = 0, y = 0

        var isSummary: Bool { members.count > 1 || overflow }
        /// The state that colours a task's box (a summary's most common one, ties by `stateOrder`).
        var state: GridDAG.State {
            DependencyGraphLayout.stateOrder.max { (states[$0] ?? 0, -rank($0)) < (states[$1] ?? 0, -rank($1)) } ?? .missing
        }

        private func rank(_ state: GridDAG.State) -> Int { DependencyGraphLayout.stateOrder.firstIndex(of: state) ?? 0 }
    }

    struct Edge: Sendable, Hashable {
        /// Indexes in `boxes`: from a dependency to its dependent.
        let from: Int, to: Int
    }

    private(set) var boxes: [Box] = []
    private(set) var edges: [Edge] = []
    /// Edges between boxes, before `graphEdges` cut them.
    private(set) var edgeCount = 0
    private(set) var taskCount = 0
    private(set) var width = 0, height = 0

    static let boxWidth = 168, boxHeight = 44, gapX = 20, gapY = 44, margin = 12
    /// Boxes side by side before a level wraps onto another row.
    static let perRow = 6
    /// The order states are listed in (legend, tooltips, ties).
    static let stateOrder: [GridDAG.State] = [.running, .ready, .waiting, .blocked, .completed, .failed, .skipped, .rejected, .missing]

    init(tasks: [GridDAG.Task], limits: DashboardLimits) {
        taskCount = tasks.count
        guard !tasks.isEmpty else { return }
        var index: [String: Int] = [:]
        for (i, task) in tasks.enumerated() where index[task.id] == nil { index[task.id] = i }
        // Dependencies by position; GridDAG lists every task it names, so none is dropped here.
        let dependencies = tasks.map { task in Array(Set(task.dependsOn.compactMap { index[$0] })).sorted() }
        var groups = Grouping(count: tasks.count)
        let fanOut = max(2, limits.graphFanOut)
        for _ in 0..<32 {
            guard groups.foldFanOuts(dependencies: dependencies, fanOut: fanOut) else { break }
        }
        groups.foldOverflow(keeping: max(1, limits.graphNodes))

        // Boxes in the order of their first task (dependencies first).
        let live = groups.liveGroups()
        var boxOf: [Int: Int] = [:]
        for (position, group) in live.enumerated() {
            boxOf[group] = position
            let members = groups.members[group].map { tasks[$0] }
            boxes.append(Box(members: members.map(\.id), states: Dictionary(members.map { ($0.state, 1) }, uniquingKeysWith: +),
                             overflow: groups.overflow == group))
        }
        var seen: Set<Edge> = []
        for (task, list) in dependencies.enumerated() {
            for dependency in list {
                guard let from = boxOf[groups.root(dependency)], let to = boxOf[groups.root(task)], from != to else { continue }
                if seen.insert(Edge(from: from, to: to)).inserted { edges.append(Edge(from: from, to: to)) }
            }
        }
        edgeCount = edges.count
        edges.sort { ($0.from, $0.to) < ($1.from, $1.to) }
        if edges.count > limits.graphEdges { edges = Array(edges.prefix(max(0, limits.graphEdges))) }
        place(allEdges: seen)
    }

    var summaryBoxes: Int { boxes.filter(\.isSummary).count }
    var summarizedTasks: Int { boxes.filter(\.isSummary).reduce(0) { $0 + $1.members.count } }

    /// Levels by longest path (Kahn's algorithm; boxes on a cycle go last), each
    /// level in the order of the boxes above it (the mean place of its
    /// dependencies), wrapped `perRow` to a row.
    private mutating func place(allEdges: Set<Edge>) {
        var incoming = [Int](repeating: 0, count: boxes.count)
        var dependents = [[Int]](repeating: [], count: boxes.count)
        var dependencies = [[Int]](repeating: [], count: boxes.count)
        for edge in allEdges {
            incoming[edge.to] += 1
            dependents[edge.from].append(edge.to)
            dependencies[edge.to].append(edge.from)
        }
        var level = [Int](repeating: 0, count: boxes.count)
        var ready = (0..<boxes.count).filter { incoming[$0] == 0 }
        var placed = [Bool](repeating: false, count: boxes.count)
        var head = 0
        while head < ready.count {
            let box = ready[head]
            head += 1
            placed[box] = true
            for next in dependents[box] {
                level[next] = max(level[next], level[box] + 1)
                incoming[next] -= 1
                if incoming[next] == 0 { ready.append(next) }
            }
        }
        let deepest = level.enumerated().filter { placed[$0.offset] }.map(\.element).max() ?? 0
        for box in boxes.indices where !placed[box] { level[box] = deepest + 1 }

        var column = [Double](repeating: 0, count: boxes.count)
        var row = 0
        var widest = 0
        let levels = Dictionary(grouping: boxes.indices, by: { level[$0] })
        for depth in levels.keys.sorted() {
            let members = levels[depth, default: []].sorted { a, b in
                let ka = Self.mean(dependencies[a].map { column[$0] }) ?? Double(a)
                let kb = Self.mean(dependencies[b].map { column[$0] }) ?? Double(b)
                return (ka, a) < (kb, b)
            }
            for (i, box) in members.enumerated() {
                let slot = i % Self.perRow
                if i > 0 && slot == 0 { row += 1 }
                column[box] = Double(slot)
                boxes[box].level = depth
                boxes[box].x = Self.margin + slot * (Self.boxWidth + Self.gapX)
                boxes[box].y = Self.margin + row * (Self.boxHeight + Self.gapY)
                widest = max(widest, slot + 1)
            }
            row += 1
        }
        width = 2 * Self.margin + widest * Self.boxWidth + max(0, widest - 1) * Self.gapX
        height = 2 * Self.margin + row * Self.boxHeight + max(0, row - 1) * Self.gapY
    }

    private static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }
}

/// Tasks merged into groups (union by the first task of each group): the
/// folding rules of `DependencyGraphLayout`.
private struct Grouping {
    /// Each task's group, by its first task; `members` of a group in task order.
    private var parent: [Int]
    var members: [[Int]]
    /// The group that `foldOverflow` made, if any.
    private(set) var overflow: Int?

    init(count: Int) {
        parent = Array(0..<count)
        members = (0..<count).map { [$0] }
    }

    func root(_ task: Int) -> Int { parent[task] }

    func liveGroups() -> [Int] { members.indices.filter { !members[$0].isEmpty } }

    private mutating func merge(_ groups: [Int]) {
        guard let target = groups.min(), groups.count > 1 else { return }
        for group in groups where group != target {
            for task in members[group] { parent[task] = target }
            members[target] += members[group]
            members[group] = []
        }
        members[target].sort()
        if let overflow, groups.contains(overflow) { self.overflow = target }
    }

    /// One pass of both fan-out rules; true when it merged anything.
    mutating func foldFanOuts(dependencies: [[Int]], fanOut: Int) -> Bool {
        var up: [Int: Set<Int>] = [:], down: [Int: Set<Int>] = [:]
        for (task, list) in dependencies.enumerated() {
            let child = parent[task]
            for dependency in list where parent[dependency] != child {
                up[child, default: []].insert(parent[dependency])
                down[parent[dependency], default: []].insert(child)
            }
        }
        let live = liveGroups()
        var batches: [(groups: [Int], keep: Int)] = []
        // Boxes that hang off one box alone. Those of a summary box are nameless
        // already (the next step of each of its tasks): all of them go into one.
        for group in live {
            let only = (down[group] ?? []).filter { up[$0] == [group] }.sorted()
            if only.count > fanOut { batches.append((only, members[group].count > 1 ? 0 : fanOut - 1)) }
        }
        // Boxes with the same dependencies and the same dependents (after the rule above, which decides where both apply).
        struct Signature: Hashable { let up: [Int], down: [Int] }
        let alike = Dictionary(grouping: live) { Signature(up: (up[$0] ?? []).sorted(), down: (down[$0] ?? []).sorted()) }
        batches += alike.values.filter { $0.count > fanOut }.map { ($0.sorted(), fanOut - 1) }.sorted { $0.0[0] < $1.0[0] }
        var merged = false
        var taken: Set<Int> = []
        for (batch, keep) in batches {
            let free = batch.filter { !taken.contains($0) }
            guard free.count > fanOut else { continue }
            // The first `keep` single tasks keep their boxes; the rest become one.
            let singles = free.filter { members[$0].count == 1 }.prefix(keep)
            let folded = free.filter { !singles.contains($0) }
            guard folded.count > 1 else { continue }
            taken.formUnion(free)
            merge(folded)
            merged = true
        }
        return merged
    }

    /// Past `keeping` boxes, every later box (by first task) into one.
    mutating func foldOverflow(keeping: Int) {
        let live = liveGroups()
        guard live.count > keeping else { return }
        let rest = Array(live.dropFirst(keeping - 1))
        overflow = rest.min()
        merge(rest)
    }
}
