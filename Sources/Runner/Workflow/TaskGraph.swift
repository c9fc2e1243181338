/// The dependency graph of the queued tasks that name `depends_on`, and what
/// each waits for (docs/ARCHITECTURE.md §10). Pure: the grid's state comes in as
/// a `standing` function, so the picker (main as it is) and the fold (main plus
/// the results it is folding) ask the same graph.
struct TaskGraph: Sendable {
    struct Node: Sendable, Equatable {
        let dependsOn: [String]
        let mode: DependencyMode
    }

    /// Where a task named as a dependency stands.
    enum Standing: Equatable {
        case finished(ResultStatus)
        /// Queued, claimed or running: not decided yet.
        case pending
        /// Not on this grid at all.
        case unknown
    }

    enum Verdict: Equatable, Sendable {
        case ready
        case waiting
        /// The mode can no longer be met because of these dependencies (the
        /// first unsuccessful one for `all_succeeded`, every one for `any_succeeded`).
        case skip(because: [String])
        /// Refused: part of a cycle, or a dependency that is not on the grid.
        case reject(String)

        var isFinal: Bool {
            switch self {
            case .skip, .reject: true
            case .ready, .waiting: false
            }
        }
    }

    /// Queued tasks with dependencies, by id.
    let nodes: [String: Node]
    /// Dependency id → the queued tasks that name it, sorted (after `removing`, perhaps some no longer in `nodes`).
    let dependents: [String: [String]]
    /// Each task on a dependency cycle → the cycle, written `a → b → c → a`.
    let cycles: [String: String]

    init(nodes: [String: Node]) {
        self.nodes = nodes
        var dependents: [String: [String]] = [:]
        for (id, node) in nodes {
            for dependency in node.dependsOn { dependents[dependency, default: []].append(id) }
        }
        self.dependents = dependents.mapValues { $0.sorted() }
        cycles = Self.findCycles(nodes)
    }

    private init(nodes: [String: Node], dependents: [String: [String]], cycles: [String: String]) {
        self.nodes = nodes
        self.dependents = dependents
        self.cycles = cycles
    }

    static let empty = TaskGraph(nodes: [:])

    /// Without `ids`, none of which is on a cycle: removing tasks cannot make a
    /// cycle, so nothing is recomputed. `dependents` may still name removed tasks;
    /// every reader checks `nodes`.
    func removing(_ ids: Set<String>) -> TaskGraph {
        var nodes = self.nodes
        for id in ids { nodes[id] = nil }
        return TaskGraph(nodes: nodes, dependents: dependents, cycles: cycles)
    }

    /// The verdict for task `id` with its dependencies standing as `standing` says.
    func verdict(of id: String, standing: (String) -> Standing) -> Verdict {
        guard let node = nodes[id] else { return .ready }
        if let cycle = cycles[id] { return .reject("dependency cycle: \(cycle)") }
        var unsuccessful: [String] = [], pending = false, succeeded = false
        for dependency in node.dependsOn {
            switch standing(dependency) {
            case .unknown:
                return .reject("depends on task \(dependency), which is not on this grid (never submitted, or removed)")
            case .pending: pending = true
            case .finished(.completed): succeeded = true
            case .finished: unsuccessful.append(dependency)
            }
        }
        switch node.mode {
        case .allSucceeded:
            if let first = unsuccessful.first { return .skip(because: [first]) }
            return pending ? .waiting : .ready
        case .allFinished:
            return pending ? .waiting : .ready
        case .anySucceeded:
            if succeeded { return .ready }
            return pending ? .waiting : .skip(because: unsuccessful)
        }
    }

    /// Every task that ends here without running (skipped or rejected), given
    /// the grid's `standing` and `finishing`: results being folded now. Each
    /// verdict feeds the next, so a failure skips its dependents' dependents in
    /// the same pass (transitively, in one fold). In the order decided: a
    /// task comes after every dependency decided with it. `seeds`: the tasks
    /// whose dependencies may have changed (their dependents follow as they are
    /// decided); nil: every task.
    func finalVerdicts(standing: (String) -> Standing, finishing: [String: ResultStatus] = [:],
                       seeds: Set<String>? = nil) -> [(id: String, verdict: Verdict)] {
        var decided: [String: Verdict] = [:], order: [(id: String, verdict: Verdict)] = []
        func now(_ id: String) -> Standing {
            if let status = finishing[id] { return .finished(status) }
            switch decided[id] {
            case .skip?: return .finished(.skipped)
            case .reject?: return .finished(.rejected)
            default: return standing(id)
            }
        }
        var work = Array((seeds.map { Array($0) } ?? Array(nodes.keys)).sorted().reversed())
        while let id = work.popLast() {
            guard decided[id] == nil, finishing[id] == nil else { continue }
            let verdict = self.verdict(of: id, standing: now)
            guard verdict.isFinal else { continue }
            decided[id] = verdict
            order.append((id, verdict))
            work.append(contentsOf: (dependents[id] ?? []).reversed())
        }
        return order
    }

    /// Tarjan's strongly connected components, iteratively (a 10,000-task
    /// chain must not overflow a thread's stack); for each component of more
    /// than one task, one cycle through it, written out.
    private static func findCycles(_ nodes: [String: Node]) -> [String: String] {
        var index: [String: Int] = [:], low: [String: Int] = [:], onStack: Set<String> = []
        var stack: [String] = [], next = 0
        var cycles: [String: String] = [:]
        for root in nodes.keys.sorted() where index[root] == nil {
            // (task, position in its dependency list)
            var frames: [(String, Int)] = [(root, 0)]
            index[root] = next; low[root] = next; next += 1
            stack.append(root); onStack.insert(root)
            while let (id, position) = frames.last {
                let edges = nodes[id]?.dependsOn ?? []
                if position < edges.count {
                    frames[frames.count - 1].1 += 1
                    let dependency = edges[position]
                    guard nodes[dependency] != nil else { continue }
                    if index[dependency] == nil {
                        index[dependency] = next; low[dependency] = next; next += 1
                        stack.append(dependency); onStack.insert(dependency)
                        frames.append((dependency, 0))
                    } else if onStack.contains(dependency) {
                        low[id] = min(low[id]!, index[dependency]!)
                    }
                    continue
                }
                frames.removeLast()
                if let parent = frames.last?.0 { low[parent] = min(low[parent]!, low[id]!) }
                guard low[id] == index[id] else { continue }
                var component: [String] = []
                while let top = stack.popLast() {
                    onStack.remove(top)
                    component.append(top)
                    if top == id { break }
                }
                guard component.count > 1 else { continue }
                let text = Self.cycleText(through: Set(component), nodes: nodes)
                for member in component { cycles[member] = text }
            }
        }
        return cycles
    }

    /// One cycle inside a strongly connected `component`, from its smallest
    /// id, following the first dependency that stays inside and closes soonest.
    static func cycleText(through component: Set<String>, nodes: [String: Node]) -> String {
        let start = component.min()!
        // Breadth-first from start's dependencies back to start: the shortest cycle through it.
        var previous: [String: String] = [:]
        var frontier = [start], seen: Set<String> = [start]
        search: while !frontier.isEmpty {
            var following: [String] = []
            for id in frontier {
                for dependency in nodes[id]?.dependsOn ?? [] where component.contains(dependency) {
                    if dependency == start { previous[start] = id; break search }
                    if seen.insert(dependency).inserted {
                        previous[dependency] = id
                        following.append(dependency)
                    }
                }
            }
            frontier = following
        }
        var path = [start]
        var cursor = previous[start] ?? start
        while cursor != start {
            path.append(cursor)
            cursor = previous[cursor] ?? start
        }
        // Collected backwards (from start's predecessor): reverse to read along the edges.
        let ordered = [start] + path.dropFirst().reversed()
        return (ordered + [start]).joined(separator: " → ")
    }
}
