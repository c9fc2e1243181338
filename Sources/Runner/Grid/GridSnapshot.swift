/// Main's files and the grid's refs at one moment. Names come from a hostile
/// writer: only paths LedgerLayout recognises and valid ids are used.
struct GridSnapshot {
    let mainTip: GitOID?
    /// Every blob on main: path → id (the finished folders kept as their entries, `MainFiles`).
    let files: MainFiles
    /// Task id → its claim commit, result commit; node id → heartbeat commit.
    let claims: [String: GitOID]
    let results: [String: GitOID]
    let nodes: [String: GitOID]
    /// Quorum tasks' runs (`ReplicaRefs`): task id → replica → its claim commit, its vote (result) commit.
    var replicaClaims: [String: [Int: GitOID]] = [:]
    var votes: [String: [Int: GitOID]] = [:]
    /// The fold lease's commit at this listing (`GridFoldLease`), nil when none was held.
    var foldLease: GitOID? = nil
    /// Task id → its latest checkpoint commit (`refs/dgrid/checkpoints/<id>`, docs/ARCHITECTURE.md §10).
    let checkpoints: [String: GitOID]
    /// What main's files say, worked out once per tip of main (`MainIndex`).
    let index: MainIndex
    /// Queue files on main, in dgrid's layout or D-GRID's (`QueuePlacement`), by path.
    var queue: [QueueLocation] { index.queue }
    /// Files under `tasks/queue/` that are neither a task nor a placeholder:
    /// the fold sets them aside (`SetAside`), `status` counts them.
    var unplaced: [UnplacedFile] { index.unplaced }
    /// Task ids already folded as completed, failed or rejected, or archived from there: found once per tip of main.
    let finishedTaskIDs: FinishedTasks

    init(mainTip: GitOID?, files: [String: GitOID], claims: [String: GitOID], results: [String: GitOID],
         nodes: [String: GitOID], index: MainIndex? = nil, checkpoints: [String: GitOID] = [:]) {
        self.init(mainTip: mainTip, files: MainFiles(files), claims: claims, results: results, nodes: nodes,
                  index: index, checkpoints: checkpoints)
    }

    init(mainTip: GitOID?, files: MainFiles, claims: [String: GitOID], results: [String: GitOID],
         nodes: [String: GitOID], index: MainIndex? = nil, checkpoints: [String: GitOID] = [:]) {
        self.mainTip = mainTip
        self.files = files
        self.claims = claims
        self.results = results
        self.nodes = nodes
        self.checkpoints = checkpoints
        self.index = index ?? MainIndex(files: files)
        finishedTaskIDs = self.index.finishedTaskIDs
    }

    /// Every file on main classified once: a connection keeps it with the tree
    /// of main's tip, so the listings between two moves of main (every poll,
    /// and the one after each claim) reuse it instead of reclassifying every path.
    struct MainIndex {
        let queue: [QueueLocation]
        /// Each queue entry's blob, in `queue`'s order: the readiness carried from
        /// tip to tip compares two queues by walking them side by side.
        let queueBlobs: [GitOID]
        let unplaced: [UnplacedFile]
        /// Task id → its queue paths (the fold asks several times per folded result).
        let queuePathsByTask: [String: [String]]
        /// Task id → its folded files (`completed/`, `failed/`, `rejected/`), made for readers
        /// of every finished task; one task's are `GridSnapshot.finishedPaths(of:)`.
        var finishedPathsByTask: [String: [String]] { finishedTaskIDs.onMain.pathsByTask }
        /// Task ids already folded as completed, failed or rejected, or archived from
        /// there (the picker asks after every claim, the fold per result): kept, not rebuilt per listing.
        let finishedTaskIDs: FinishedTasks
        /// The wrapping sum of the ids' hashes (`FinishedIndex.hash(of:)`) finished on the tree, and
        /// the archive index's identity: two tips' finished sets differ by exactly the ids
        /// whose hashes make up the difference when the archive did not change, which lets
        /// readiness carried between tips trust what it checked (`QueueReadiness`).
        var finishedFingerprint: Int { finishedTaskIDs.onMain.fingerprint }
        let archiveIdentity: Int
        /// Task id → its `in_progress/<node>-<id>.json` paths, sorted (the picker asks per claimed task).
        let inProgressPathsByTask: [String: [String]]

        /// `archive`: main's archive index at this tip (`ArchiveCatalog`); none for a grid that never archived.
        init(files: [String: GitOID], archive: ArchiveCatalog = .empty) {
            self.init(files: MainFiles(files), archive: archive)
        }

        /// Every path outside the finished folders is classified here; those are read as bytes (`FinishedIndex`).
        init(files: MainFiles, archive: ArchiveCatalog = .empty) {
            var queue: [QueueLocation] = [], unplaced: [UnplacedFile] = [], signatures: [(path: String, taskPath: String)] = []
            for (path, blob) in files.others {
                switch QueuePlacement.of(path: path) {
                case .task(let location)?: queue.append(location)
                case .unplaceable(let reason)?: unplaced.append(UnplacedFile(path: path, blob: blob, reason: reason))
                case .signature(let taskPath)?: signatures.append((path, taskPath))
                case .placeholder?, nil: break
                }
            }
            // A queue file of a task that already has a result here is a replay
            // (a finished task's file pushed back): never run, set aside with why.
            let finished = FinishedTasks(onMain: FinishedIndex(files), archive: archive)
            finishedTaskIDs = finished
            archiveIdentity = archive.identity
            var replayed: Set<String> = []
            queue.removeAll { location in
                guard finished.contains(location.taskID) else { return false }
                replayed.insert(location.path)
                unplaced.append(UnplacedFile(path: location.path, blob: files[location.path],
                                             reason: "task \(location.taskID) already has a result on this grid: a replay, not run again"))
                return true
            }
            for signature in signatures where files[signature.taskPath] == nil || replayed.contains(signature.taskPath) {
                // Its task is gone (folded, or never pushed) or set aside: so is it.
                unplaced.append(UnplacedFile(path: signature.path, blob: files[signature.path],
                                             reason: files[signature.taskPath] == nil ? "a signature file with no task file beside it"
                                                 : "the signature of a replayed task"))
            }
            var inProgress: [String: [String]] = [:]
            for path in files.others.keys {
                if let named = GridSnapshot.nodeAndTask(path, under: [GridSnapshot.inProgressDirectory]) {
                    inProgress[named.taskID, default: []].append(path)
                }
            }
            inProgressPathsByTask = inProgress.mapValues { $0.sorted() }
            self.queue = queue.sorted { $0.path < $1.path }
            queueBlobs = self.queue.map { files[$0.path]! }
            self.unplaced = unplaced.sorted { $0.path < $1.path }
            queuePathsByTask = Dictionary(grouping: self.queue, by: \.taskID).mapValues { $0.map(\.path) }
        }
    }

    func queuePaths(of taskID: String) -> [String] {
        index.queuePathsByTask[taskID] ?? []
    }

    /// Node ids named on main (`nodes/<id>.json`) or by heartbeat refs.
    var knownNodes: Set<String> {
        var ids = Set(nodes.keys)
        for path in files.others.keys where path.hasPrefix("nodes/") && path.hasSuffix(".json") {
            let id = String(path.dropFirst("nodes/".count).dropLast(".json".count))
            if LedgerLayout.isValidNodeID(id) { ids.insert(id) }
        }
        return ids
    }

    /// How main shows `taskID` finished: completed when any of its folded files
    /// is under `completed/`, else failed (or skipped: both fold into `failed/`)
    /// or rejected; nil when it is not finished.
    func finishedStatus(of taskID: String) -> ResultStatus? {
        let paths = finishedPaths(of: taskID)
        guard !paths.isEmpty else { return archived(taskID)?.folderStatus }
        if paths.contains(where: { $0.hasPrefix("tasks/completed/") }) { return .completed }
        return paths.contains(where: { $0.hasPrefix(Self.rejectedDirectory) }) ? .rejected : .failed
    }

    /// The task a folded file (`completed/`, `failed/`, `rejected/<id>.json`) is of; nil for any other path.
    static func finishedTaskID(_ path: String) -> String? {
        if let id = stem(path, under: rejectedDirectory) { return TaskParser.isValidTaskID(id) ? id : nil }
        return nodeAndTask(path, under: finishedDirectories)?.taskID
    }

    /// The task files main shows `taskID` finished under (completed/, failed/, rejected/).
    func finishedPaths(of taskID: String) -> [String] {
        index.finishedTaskIDs.onMain.paths(of: taskID)
    }

    /// Where the archive keeps `taskID`, when it was archived (docs/ARCHITECTURE.md §10).
    func archived(_ taskID: String) -> ArchiveEntry? {
        index.finishedTaskIDs.archive.entry(for: taskID)
    }

    /// The folded file whose record decides for a task main shows finished under `paths`
    /// (`finishedPaths`): its `completed/` one when it has one (as `finishedStatus`), else
    /// the first; and that record's `.json.log` blob, when main has it.
    func deciding(_ paths: [String]) -> (path: String, record: GitOID?) {
        let path = paths.first { $0.hasPrefix("tasks/completed/") } ?? paths[0]
        return (path, files[LedgerLayout.logPath(for: path)])
    }

    /// The `.json.log` blobs of a folded task (completed, failed or rejected), in path order.
    func foldedLogs(of taskID: String) -> [GitOID] {
        finishedPaths(of: taskID).compactMap { files[LedgerLayout.logPath(for: $0)] }
    }

    /// `in_progress/<node>-<id>.json` paths of a task: every node's name for
    /// it (a takeover not folded yet leaves the previous holder's), found by
    /// reading each name exactly, never by its suffix — `w1-job-7.json` is
    /// task job-7's, not task 7's.
    func inProgressPaths(of taskID: String) -> [String] {
        index.inProgressPathsByTask[taskID] ?? []
    }

    static let inProgressDirectory = "tasks/in_progress/"
    static let finishedDirectories = ["tasks/completed/", "tasks/failed/"]
    static let rejectedDirectory = "tasks/rejected/"

    /// The node and task of `<directory><node>-<task>.json` for a file directly
    /// in one of `directories` (`LedgerLayout.nodeAndTask(inName:)`); nil otherwise.
    static func nodeAndTask(_ path: String, under directories: [String]) -> (node: String, taskID: String)? {
        for directory in directories {
            if let name = stem(path, under: directory) { return LedgerLayout.nodeAndTask(inName: name) }
        }
        return nil
    }

    /// The file name without `directory` and `.json`, for files directly in it.
    static func stem(_ path: String, under directory: String) -> String? {
        guard path.hasPrefix(directory), path.hasSuffix(".json") else { return nil }
        let name = path.dropFirst(directory.count).dropLast(".json".count)
        // Bytes, not Foundation's `contains`: this runs for every folded file on main.
        guard !name.isEmpty, !name.utf8.contains(UInt8(ascii: "/")) else { return nil }
        return String(name)
    }
}
