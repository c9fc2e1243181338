/// Main's files and the grid's refs at one moment. Names come from a hostile
/// writer: only paths LedgerLayout recognises and valid ids are used.
struct GridSnapshot {
    let mainTip: GitOID?
    /// Every blob on main: path → id.
    let files: [String: GitOID]
    /// Task id → its claim commit, result commit; node id → heartbeat commit.
    let claims: [String: GitOID]
    let results: [String: GitOID]
    let nodes: [String: GitOID]

    /// Queue files on main (flat D-GRID names and `<priority>/<shard>/` ones).
    var queue: [QueueLocation] {
        files.keys.compactMap(LedgerLayout.queueEntry(path:)).sorted { $0.path < $1.path }
    }

    func queuePaths(of taskID: String) -> [String] {
        queue.filter { $0.taskID == taskID }.map(\.path)
    }

    /// Node ids named on main (`nodes/<id>.json`) or by heartbeat refs.
    var knownNodes: Set<String> {
        var ids = Set(nodes.keys)
        for path in files.keys where path.hasPrefix("nodes/") && path.hasSuffix(".json") {
            let id = String(path.dropFirst("nodes/".count).dropLast(".json".count))
            if LedgerLayout.isValidNodeID(id) { ids.insert(id) }
        }
        return ids
    }

    /// Task ids already folded as completed, failed or rejected.
    var finishedTaskIDs: Set<String> {
        var ids: Set<String> = []
        let nodes = knownNodes
        for path in files.keys where path.hasSuffix(".json") {
            if path.hasPrefix("tasks/rejected/") {
                let id = Self.stem(path, under: "tasks/rejected/")
                if let id, TaskParser.isValidTaskID(id) { ids.insert(id) }
            }
            for directory in ["tasks/completed/", "tasks/failed/"] where path.hasPrefix(directory) {
                guard let stem = Self.stem(path, under: directory) else { continue }
                ids.formUnion(Self.taskIDs(inNodeTaskName: stem, knownNodes: nodes))
            }
        }
        return ids
    }

    /// The `.json.log` blobs of a folded task (completed, failed or rejected).
    func foldedLogs(of taskID: String) -> [GitOID] {
        let nodes = knownNodes
        return files.compactMap { path, blob in
            guard path.hasSuffix(".json" + LedgerLayout.logSuffix) else { return nil }
            let taskPath = String(path.dropLast(LedgerLayout.logSuffix.count))
            if let stem = Self.stem(taskPath, under: "tasks/rejected/") { return stem == taskID ? blob : nil }
            guard let stem = Self.stem(taskPath, under: "tasks/completed/") ?? Self.stem(taskPath, under: "tasks/failed/") else { return nil }
            return Self.taskIDs(inNodeTaskName: stem, knownNodes: nodes).contains(taskID) ? blob : nil
        }
    }

    /// `in_progress/<node>-<id>.json` paths of a task.
    func inProgressPaths(of taskID: String) -> [String] {
        files.keys.filter { path in
            guard let stem = Self.stem(path, under: "tasks/in_progress/") else { return false }
            return stem.hasSuffix("-" + taskID)
        }.sorted()
    }

    /// The file name without `directory` and `.json`, for files directly in it.
    static func stem(_ path: String, under directory: String) -> String? {
        guard path.hasPrefix(directory), path.hasSuffix(".json") else { return nil }
        let name = path.dropFirst(directory.count).dropLast(".json".count)
        guard !name.isEmpty, !name.contains("/") else { return nil }
        return String(name)
    }

    /// `<node>-<task>`: node ids may hold '-', so a known node prefix decides;
    /// without one, every split is a candidate (a finished-looking name can
    /// only keep a task out of the queue, never run one twice).
    static func taskIDs(inNodeTaskName stem: String, knownNodes: Set<String>) -> [String] {
        for node in knownNodes where stem.hasPrefix(node + "-") {
            let id = String(stem.dropFirst(node.count + 1))
            if TaskParser.isValidTaskID(id) { return [id] }
        }
        var ids: [String] = []
        var rest = Substring(stem)
        while let dash = rest.firstIndex(of: "-") {
            rest = rest[rest.index(after: dash)...]
            if TaskParser.isValidTaskID(String(rest)) { ids.append(String(rest)) }
        }
        return ids
    }
}
