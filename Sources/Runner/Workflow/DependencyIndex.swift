/// The dependency graph of main's queue and each queued task's verdict for one
/// tip of main (docs/ARCHITECTURE.md §10): a poll asks whether a task is ready in
/// O(1). Readiness reads main only — a dependency counts as finished once a fold
/// has put it in `completed/`, `failed/` or `rejected/`, never on an unfolded
/// result ref. Built once (`QueueReadiness.build`), then carried from tip to tip
/// (`QueueReadiness.advanced`): only what a new tip changed is looked at again.
struct DependencyIndex: Sendable {
    let graph: TaskGraph
    /// Queued tasks that may not be claimed now: waiting, or to be skipped or rejected by the next fold.
    let notReady: Set<String>
    /// Queued tasks the next fold ends without running (skipped, rejected), with
    /// why, each after the dependencies it is decided with.
    let final: [(id: String, verdict: TaskGraph.Verdict)]

    static let empty = DependencyIndex(graph: .empty, notReady: [], final: [])

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

/// What a picker needs from main's queue at one tip (docs/ARCHITECTURE.md §10):
/// the dependency index, and the queued tasks that may be claimed, in claim
/// order. A new tip of main (a fold, a submission) changes a few queue entries
/// and a few dependencies' standing; `advanced` carries the previous tip's
/// state over and re-decides only the tasks those touch — the merge over
/// 9,998 shards is looked at when a shard finishes, the shards not at all.
struct QueueReadiness: Sendable {
    let tip: GitOID
    let index: DependencyIndex
    /// Queued, not finished, dependencies done as their mode asks: in `QueueOrder`.
    let ordered: [QueueCandidate]
    /// How each dependency named by a queued task stood at this tip.
    let standings: [String: TaskGraph.Standing]
    /// main's queue, its blobs, its finished and in-progress task ids at this tip, for the next tip's difference.
    let queue: [QueueLocation]
    let queueBlobs: [GitOID]
    let finished: FinishedTasks
    let finishedFingerprint: Int
    let archiveIdentity: Int
    let inProgress: Set<String>

    init(tip: GitOID, index: DependencyIndex, ordered: [QueueCandidate], standings: [String: TaskGraph.Standing], snapshot: GridSnapshot) {
        self.tip = tip
        self.index = index
        self.ordered = ordered
        self.standings = standings
        queue = snapshot.index.queue
        queueBlobs = snapshot.index.queueBlobs
        finished = snapshot.finishedTaskIDs
        finishedFingerprint = snapshot.index.finishedFingerprint
        archiveIdentity = snapshot.index.archiveIdentity
        inProgress = Set(snapshot.index.inProgressPathsByTask.keys)
    }

    /// Where headers come from and how the queue is ordered: a connection's, or a test's.
    struct Context {
        let header: (GitOID) throws(GridError) -> QueuedHeader
        let shardCount: Int
        let ownShards: Set<Int>

        init(header: @escaping (GitOID) throws(GridError) -> QueuedHeader, shardCount: Int, ownShards: Set<Int>) {
            self.header = header
            self.shardCount = shardCount
            self.ownShards = ownShards
        }

        init(_ connection: GridConnection) {
            self.init(header: { (blob) throws(GridError) in try connection.queuedHeader(blob) },
                      shardCount: connection.settings.shardCount, ownShards: connection.settings.ownShards)
        }
    }

    /// From nothing: every queued task's header (each blob read once per connection).
    static func build(_ snapshot: GridSnapshot, tip: GitOID, connection: Context) throws(GridError) -> QueueReadiness {
        var nodes: [String: TaskGraph.Node] = [:]
        for (location, blob) in zip(snapshot.index.queue, snapshot.index.queueBlobs) {
            guard nodes[location.taskID] == nil else { continue }
            let header = try connection.header(blob)
            if !header.dependsOn.isEmpty { nodes[location.taskID] = TaskGraph.Node(dependsOn: header.dependsOn, mode: header.dependencyMode) }
        }
        let graph = TaskGraph(nodes: nodes)
        let standing = DependencyIndex.standing(in: snapshot)
        var standings: [String: TaskGraph.Standing] = [:]
        for dependency in graph.dependents.keys { standings[dependency] = standing(dependency) }
        let known = { (id: String) in standings[id] ?? standing(id) }
        var notReady: Set<String> = []
        for id in graph.nodes.keys where graph.verdict(of: id, standing: known) != .ready { notReady.insert(id) }
        let index = DependencyIndex(graph: graph, notReady: notReady, final: graph.finalVerdicts(standing: known))
        let ordered = try candidates(snapshot.queue, snapshot: snapshot, index: index, connection: connection)
        return QueueReadiness(tip: tip, index: index, ordered: ordered, standings: standings, snapshot: snapshot)
    }

    /// This state carried to `snapshot`'s tip: queue entries that came, went or
    /// changed; tasks whose dependencies' standing changed; the rest kept as it was.
    func advanced(to snapshot: GridSnapshot, tip: GitOID, connection: Context) throws(GridError) -> QueueReadiness {
        // The two queues side by side (both sorted by path): entries that came, went, or changed blob.
        let newQueue = snapshot.index.queue, newBlobs = snapshot.index.queueBlobs
        var added: [QueueLocation] = [], addedBlobs: [GitOID] = [], changedPaths: Set<String> = [], left: Set<String> = []
        var i = 0, j = 0
        while i < queue.count || j < newQueue.count {
            if j == newQueue.count || (i < queue.count && queue[i].path < newQueue[j].path) {
                left.insert(queue[i].taskID)
                changedPaths.insert(queue[i].path)
                i += 1
            } else if i == queue.count || newQueue[j].path < queue[i].path {
                added.append(newQueue[j])
                addedBlobs.append(newBlobs[j])
                j += 1
            } else {
                if queueBlobs[i] != newBlobs[j] {
                    left.insert(queue[i].taskID)
                    changedPaths.insert(queue[i].path)
                    added.append(newQueue[j])
                    addedBlobs.append(newBlobs[j])
                }
                i += 1
                j += 1
            }
        }
        let addedIDs = Set(added.map(\.taskID))
        // Ids no longer the node they were: left the queue, or came back changed.
        let gone = left.filter { addedIDs.contains($0) || snapshot.queuePaths(of: $0).isEmpty }
        var nodes = index.graph.nodes
        for id in gone { nodes[id] = nil }
        // Tasks leaving the graph only shrink it, unless one was on a cycle (then the rest may no longer be).
        var changedShape = gone.contains { index.graph.cycles[$0] != nil }
        var dirty: Set<String> = []
        var newNodes: [TaskGraph.Node] = []
        for (location, blob) in zip(added, addedBlobs) {
            let header = try connection.header(blob)
            guard !header.dependsOn.isEmpty else { continue }
            let node = TaskGraph.Node(dependsOn: header.dependsOn, mode: header.dependencyMode)
            nodes[location.taskID] = node
            newNodes.append(node)
            dirty.insert(location.taskID)
            changedShape = true
        }
        // New or changed edges can close a cycle: the graph is rebuilt. Removals alone only shrink it.
        let graph = changedShape ? TaskGraph(nodes: nodes) : index.graph.removing(gone)

        // Whose standing may have changed: what came or went in the queue, in progress or in a
        // folder. A fold moves exactly those; anything else (a finished file pushed or removed
        // by hand, archival) shows in the finished ids' fingerprint, and then every dependency is looked at.
        let standing = DependencyIndex.standing(in: snapshot)
        let newFinished = snapshot.finishedTaskIDs
        let newInProgress = Set(snapshot.index.inProgressPathsByTask.keys)
        var touched = left.union(addedIDs).union(inProgress.symmetricDifference(newInProgress))
        var expected = finishedFingerprint
        for id in touched {
            if newFinished.isRecent(id) && !finished.isRecent(id) { expected &+= FinishedIndex.hash(of: id) }
            if finished.isRecent(id) && !newFinished.isRecent(id) { expected &-= FinishedIndex.hash(of: id) }
        }
        if expected != snapshot.index.finishedFingerprint || archiveIdentity != snapshot.index.archiveIdentity {
            touched = Set(graph.dependents.keys)
        }
        var standings = self.standings
        for dependency in touched where graph.dependents[dependency] != nil {
            let now = standing(dependency)
            if standings[dependency] != now {
                standings[dependency] = now
                dirty.formUnion(graph.dependents[dependency] ?? [])
            }
        }
        // A new node's dependencies may have been named before, then not: looked at afresh.
        for node in newNodes { for dependency in node.dependsOn { standings[dependency] = standing(dependency) } }
        let known = { (id: String) in standings[id] ?? standing(id) }

        var notReady = index.notReady.subtracting(gone)
        if changedShape {
            // Cycles may have formed or gone: every node's verdict again (a submission with dependencies, not a fold).
            notReady = []
            for id in graph.nodes.keys where graph.verdict(of: id, standing: known) != .ready { notReady.insert(id) }
        } else {
            for id in dirty where graph.nodes[id] != nil {
                if graph.verdict(of: id, standing: known) == .ready { notReady.remove(id) } else { notReady.insert(id) }
            }
        }
        let seeds = changedShape ? nil : dirty.union(index.final.map(\.id).filter { graph.nodes[$0] != nil })
        let newIndex = DependencyIndex(graph: graph, notReady: notReady, final: graph.finalVerdicts(standing: known, seeds: seeds))

        // The claim order: what stays (its entry unchanged, still ready), and what became claimable.
        let becameNotReady = changedShape ? notReady.subtracting(index.notReady) : dirty.filter { notReady.contains($0) && index.isReady($0) }
        let kept = changedPaths.isEmpty && becameNotReady.isEmpty ? ordered : ordered.filter { candidate in
            !changedPaths.contains(candidate.location.path) && !becameNotReady.contains(candidate.taskID)
        }
        var arriving = added
        for id in changedShape ? index.notReady : dirty where newIndex.isReady(id) && !index.isReady(id) && !addedIDs.contains(id) {
            arriving += snapshot.queuePaths(of: id).compactMap(LedgerLayout.queueEntry(path:))
        }
        let fresh = try Self.candidates(arriving, snapshot: snapshot, index: newIndex, connection: connection)
        var merged: [QueueCandidate] = []
        merged.reserveCapacity(kept.count + fresh.count)
        var walk = QueueOrder.Merged(kept, fresh, shardCount: connection.shardCount, ownShards: connection.ownShards)
        while let next = walk.next() { merged.append(next) }
        return QueueReadiness(tip: tip, index: newIndex, ordered: merged, standings: standings, snapshot: snapshot)
    }

    /// `locations` that may be claimed, as candidates in claim order.
    private static func candidates(_ locations: [QueueLocation], snapshot: GridSnapshot, index: DependencyIndex,
                                   connection: Context) throws(GridError) -> [QueueCandidate] {
        let finished = snapshot.finishedTaskIDs
        var candidates: [QueueCandidate] = []
        candidates.reserveCapacity(locations.count)
        for location in locations where !finished.contains(location.taskID) && index.isReady(location.taskID) {
            guard let blob = snapshot.files[location.path] else { continue }
            let header = try connection.header(blob)
            candidates.append(QueueCandidate(location: location, priority: location.priority ?? header.priority ?? .normal,
                                             createdAt: header.createdAt))
        }
        return QueueOrder.order(candidates, shardCount: connection.shardCount, ownShards: connection.ownShards)
    }
}

extension GridConnection {
    /// The dependency index at `snapshot`'s tip.
    func dependencies(of snapshot: GridSnapshot) throws(GridError) -> DependencyIndex {
        try readiness(of: snapshot)?.index ?? .empty
    }

    /// main's queued tasks that may be claimed as far as main can tell — not
    /// finished, their dependencies done as their mode asks — in claim order
    /// (`QueueOrder`), kept from tip to tip.
    func orderedQueue(of snapshot: GridSnapshot) throws(GridError) -> [QueueCandidate] {
        try readiness(of: snapshot)?.ordered ?? []
    }
}
