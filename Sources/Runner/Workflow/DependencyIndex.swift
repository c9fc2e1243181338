/// The dependency graph of main's queue and each queued task's verdict, worked
/// out once per tip of main (docs/ARCHITECTURE.md §10): a poll asks whether a
/// task is ready in O(1), and nothing is recomputed from history. Readiness
/// reads main only — a dependency counts as finished once a fold has put it in
/// `completed/`, `failed/` or `rejected/`, never on an unfolded result ref.
struct DependencyIndex: Sendable {
    let graph: TaskGraph
    /// Queued tasks that may not be claimed now: waiting, or to be skipped or rejected by the next fold.
    let notReady: Set<String>
    /// Queued tasks the next fold ends without running (skipped, rejected), with
    /// why, each after the dependencies it is decided with.
    let final: [(id: String, verdict: TaskGraph.Verdict)]

    static let empty = DependencyIndex(graph: .empty, snapshot: nil)

    init(graph: TaskGraph, snapshot: GridSnapshot?) {
        self.graph = graph
        guard let snapshot, !graph.nodes.isEmpty else {
            notReady = []
            final = []
            return
        }
        let standing = Self.standing(in: snapshot)
        var notReady: Set<String> = []
        for id in graph.nodes.keys where graph.verdict(of: id, standing: standing) != .ready { notReady.insert(id) }
        self.notReady = notReady
        final = graph.finalVerdicts(standing: standing)
    }

    func isReady(_ taskID: String) -> Bool { !notReady.contains(taskID) }

    /// Where a dependency stands on main: finished in a folder, or pending while
    /// its file is queued or in progress; unknown when main has no file of it.
    static func standing(in snapshot: GridSnapshot) -> (String) -> TaskGraph.Standing {
        { id in
            if let status = snapshot.finishedStatus(of: id) { return .finished(status) }
            if !snapshot.queuePaths(of: id).isEmpty || !snapshot.inProgressPaths(of: id).isEmpty { return .pending }
            return .unknown
        }
    }
}

extension GridConnection {
    /// The dependency index of `snapshot`'s tip of main: built once per tip from
    /// the queued files' headers (each read once per blob), then reused by every poll.
    func dependencies(of snapshot: GridSnapshot) throws(GridError) -> DependencyIndex {
        guard let tip = snapshot.mainTip else { return .empty }
        return try memoized("dependencies", tip) { () throws(GridError) -> DependencyIndex in
            var nodes: [String: TaskGraph.Node] = [:]
            for location in snapshot.queue where nodes[location.taskID] == nil {
                guard let blob = snapshot.files[location.path] else { continue }
                let header = try queuedHeader(blob)
                guard !header.dependsOn.isEmpty else { continue }
                nodes[location.taskID] = TaskGraph.Node(dependsOn: header.dependsOn, mode: header.dependencyMode)
            }
            return DependencyIndex(graph: TaskGraph(nodes: nodes), snapshot: snapshot)
        }
    }
}
