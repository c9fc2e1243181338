import Foundation

/// `dgrid dag` (docs/ARCHITECTURE.md §10): the dependency graph of the tasks on
/// main — every task that names `depends_on` or is named by one — with each
/// task's state, as the workers decide it.
public struct GridDAG {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public enum State: String, Sendable, Codable {
        /// Queued, its dependencies finished as its mode asks: a worker may claim it.
        case ready
        /// Queued, waiting for dependencies to finish.
        case waiting
        /// Queued, but the next fold ends it without running (a dependency ruled it out, a cycle, an unknown dependency).
        case blocked
        case running, completed, failed, skipped, rejected
        /// Named as a dependency, but not on this grid.
        case missing
    }

    public struct Task: Sendable, Codable, Equatable {
        public var id: String
        public var state: State
        public var dependsOn: [String]
        public var dependencyMode: String?
        /// Why it waits or will not run.
        public var reason: String?

        enum CodingKeys: String, CodingKey {
            case id, state, dependsOn = "depends_on", dependencyMode = "dependency_mode", reason
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        /// Dependencies before their dependents.
        public var tasks: [Task]
    }

    /// The graph, or with `focus` only that task, everything it depends on and everything that depends on it.
    public func report(focus: String? = nil) throws(GridError) -> Report {
        try report(in: try connection.snapshot(), focus: focus)
    }

    /// The graph of one listing (the dashboard reads every section from the same one).
    func report(in snapshot: GridSnapshot, focus: String? = nil) throws(GridError) -> Report {
        guard snapshot.mainTip != nil else { throw .notInitialised(repository: connection.repositoryInUse) }
        let index = try connection.dependencies(of: snapshot)
        // Every task file on main and where it sits: queued, in progress, or folded.
        var paths: [String: String] = [:]
        for location in snapshot.queue where paths[location.taskID] == nil { paths[location.taskID] = location.path }
        for (id, list) in snapshot.index.inProgressPathsByTask { if let first = list.first { paths[id] = paths[id] ?? first } }
        for (id, list) in snapshot.index.finishedPathsByTask { if let first = list.first { paths[id] = first } }
        var edges: [String: (dependsOn: [String], mode: DependencyMode?)] = [:]
        for (id, path) in paths {
            guard let blob = snapshot.files[path] else { continue }
            let header = try connection.queuedHeader(blob)
            if !header.dependsOn.isEmpty { edges[id] = (header.dependsOn, header.dependencyMode) }
        }
        var members = Set(edges.keys)
        for edge in edges.values { members.formUnion(edge.dependsOn) }
        if let focus {
            guard members.contains(focus) || paths[focus] != nil else {
                throw .local("task \(focus) is not on this grid")
            }
            members = Self.connected(to: focus, edges: edges.mapValues(\.dependsOn))
        }
        let standing = DependencyIndex.standing(in: snapshot)
        let final = Dictionary(index.final.map { ($0.id, $0.verdict) }, uniquingKeysWith: { first, _ in first })
        var tasks: [Task] = []
        for id in Self.dependenciesFirst(members, edges: edges.mapValues(\.dependsOn)) {
            let edge = edges[id]
            var task = Task(id: id, state: .missing, dependsOn: edge?.dependsOn ?? [], dependencyMode: edge?.mode?.rawValue)
            if let status = snapshot.finishedStatus(of: id) {
                task.state = status == .completed ? .completed : status == .rejected ? .rejected : try failedState(of: id, in: snapshot)
            } else if !snapshot.inProgressPaths(of: id).isEmpty || snapshot.claims[id] != nil || snapshot.results[id] != nil {
                task.state = .running
            } else if !snapshot.queuePaths(of: id).isEmpty {
                switch final[id] ?? (index.isReady(id) ? .ready : .waiting) {
                case .ready: task.state = .ready
                case .waiting:
                    task.state = .waiting
                    let pending = task.dependsOn.filter { standing($0) == .pending }
                    task.reason = "waits for " + pending.prefix(5).joined(separator: ", ") + (pending.count > 5 ? " and \(pending.count - 5) more" : "")
                case .skip(let because):
                    task.state = .blocked
                    task.reason = "to be skipped: " + because.prefix(5).joined(separator: ", ") + (because.count > 5 ? " and \(because.count - 5) more" : "") + " did not succeed"
                case .reject(let why):
                    task.state = .blocked
                    task.reason = "to be rejected: \(why)"
                }
            }
            tasks.append(task)
        }
        return Report(tasks: tasks)
    }

    /// failed/ holds failed and skipped tasks: the record says which.
    private func failedState(of id: String, in snapshot: GridSnapshot) throws(GridError) -> State {
        if let archived = snapshot.archived(id), snapshot.foldedLogs(of: id).isEmpty { return archived.status == .skipped ? .skipped : .failed }
        guard let blob = snapshot.foldedLogs(of: id).first,
              let bytes = try? connection.blob(blob, limit: TaskInputs.maxRecordBytes),
              ResultRecord.parse(bytes)?.status == .skipped else { return .failed }
        return .skipped
    }

    /// `focus`, its dependencies and its dependents, transitively.
    static func connected(to focus: String, edges: [String: [String]]) -> Set<String> {
        var dependents: [String: [String]] = [:]
        for (id, list) in edges { for dependency in list { dependents[dependency, default: []].append(id) } }
        var seen: Set<String> = [focus]
        for next in [{ (id: String) in edges[id] ?? [] }, { (id: String) in dependents[id] ?? [] }] {
            var work = [focus]
            while let id = work.popLast() {
                for other in next(id) where seen.insert(other).inserted { work.append(other) }
            }
        }
        return seen
    }

    /// `members` with every task after the dependencies it names (in levels, each by id);
    /// tasks on a cycle come last, in id order.
    static func dependenciesFirst(_ members: Set<String>, edges: [String: [String]]) -> [String] {
        var remaining: [String: Int] = [:], dependents: [String: [String]] = [:]
        for id in members {
            let inside = (edges[id] ?? []).filter { members.contains($0) }
            remaining[id] = inside.count
            for dependency in inside { dependents[dependency, default: []].append(id) }
        }
        // Level by level (Kahn's algorithm), each level in id order.
        var level = remaining.filter { $0.value == 0 }.map(\.key).sorted()
        var order: [String] = []
        while !level.isEmpty {
            order += level
            var next: [String] = []
            for id in level {
                for dependent in dependents[id] ?? [] {
                    remaining[dependent]! -= 1
                    if remaining[dependent] == 0 { next.append(dependent) }
                }
            }
            level = next.sorted()
        }
        let placed = Set(order)
        return order + members.subtracting(placed).sorted()
    }
}
