import Foundation
import Sandbox

/// `dgrid status` and `dgrid result`: read-only views of main and the refs.
public struct GridStatus {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public struct Counts: Sendable, Codable, Equatable {
        public var queued = 0, inProgress = 0, completed = 0, failed = 0, rejected = 0, late = 0
        /// Refs not yet folded: claims of running tasks, published results.
        public var claims = 0, results = 0
        public var nodes: [String] = []
        public var mainTip: String?
        /// Queued tasks per priority (critical first).
        public var queuedByPriority: [String: Int] = [:]
        public var running: [Running] = []
        public var nodeRecords: [NodeSummary] = []
        /// Files under tasks/queue/ no worker can read, waiting for the fold to set
        /// them aside; and those it set aside in tasks/rejected/unplaced/.
        public var unplaceable = 0, setAside = 0
        /// Fields of queued tasks that this dgrid does not know: kept in the
        /// task and reported in its result record (DESIGN §3), and shown here
        /// before any worker runs it. By field name.
        public var unknownFields: [UnknownField] = []
        /// Queued files not read for `unknownFields` (past `unknownFieldScanLimit`).
        public var unknownFieldsUnscanned = 0
        /// The grid's id (`.dgrid/grid.json`); nil until `dgrid init` gives it one.
        public var gridID: GridID?
        /// Tasks archived off main's folders (docs/ARCHITECTURE.md §10), by the folder they left: completed, failed, rejected.
        public var archived: [String: Int] = [:]
        /// With several backends (docs/ARCHITECTURE.md §11): each one's state, the authority marked; empty with one.
        public var backends: [BackendState] = []

        enum CodingKeys: String, CodingKey {
            case queued, inProgress = "in_progress", completed, failed, rejected, late, claims, results, nodes, mainTip = "main"
            case queuedByPriority = "queued_by_priority", running, nodeRecords = "node_records"
            case unplaceable, setAside = "set_aside"
            case unknownFields = "unknown_fields", unknownFieldsUnscanned = "unknown_fields_unscanned"
            case gridID = "grid_id", archived, backends
        }
    }

    /// A field name no dgrid task field has, and the queued tasks that carry it.
    public struct UnknownField: Sendable, Codable, Equatable {
        public var field: String
        public var queuedTasks: Int
        /// The first such task, by queue path.
        public var exampleTask: String

        enum CodingKeys: String, CodingKey {
            case field, queuedTasks = "queued_tasks", exampleTask = "example_task"
        }
    }

    /// How many queued task files `status` reads for unknown fields: each is a
    /// blob read and a parse, and a grid may hold 10,000 queued tasks.
    public static let unknownFieldScanLimit = 5_000

    /// A node as its last heartbeat describes it.
    public struct NodeSummary: Sendable, Codable, Equatable {
        public var nodeID: String, status: String, slots: Int, lastHeartbeat: String
        /// "healthy" or "unhealthy" (docs/ARCHITECTURE.md §7); `reason` says why and what fixes it.
        public var health: String
        public var reason: String?
        /// The node's Git circuit as it last said ("closed", "open", "half_open"); nil from older workers.
        public var gitCircuit: String?
        /// The record's own `reputation`, when it carries one (unverified: `NodeRecord.reputation`).
        public var reputation: Double?

        enum CodingKeys: String, CodingKey {
            case nodeID = "node_id", status, slots, lastHeartbeat = "last_heartbeat", health, reason, gitCircuit = "git_circuit"
            case reputation
        }

        /// `reason` made safe for a terminal: any repository writer can push a node record.
        public var shownReason: String? { reason.map { UntrustedText.shown($0, limit: 400) } }
    }

    /// A task under a claim: who holds it and until when, or who gave it back.
    public struct Running: Sendable, Codable, Equatable {
        public var taskID: String, nodeID: String, attempt: Int, leaseUntil: String
        public var expired: Bool
        /// "held", or "released" (given back: runnable by anyone now).
        public var state: String
        /// Earlier attempts that ended without a result.
        public var previousAttempts: Int
        /// Who sent the task (docs/ARCHITECTURE.md §9): the first trusted signer by
        /// this host's trust when `principalVerified`, else the task's own
        /// free-text `submitter` (nil when it names none).
        public var principal: String?
        public var principalVerified = false
        /// How far the task says it is ("42% message", docs/ARCHITECTURE.md §10), as its last renewal carried it.
        public var progress: String?
        /// It has a checkpoint on the grid (`refs/dgrid/checkpoints/<id>`): a takeover resumes from it.
        public var checkpointed = false

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id", nodeID = "node_id", attempt, leaseUntil = "lease_until", expired, state
            case previousAttempts = "previous_attempts", principal, principalVerified = "principal_verified", progress
            case checkpointed
        }

        /// "alice", "bob (unverified)", or "unknown (unverified)", for a terminal.
        public var shownPrincipal: String {
            (principal.map { UntrustedText.shown($0, limit: 64) } ?? "unknown") + (principalVerified ? "" : " (unverified)")
        }
    }

    /// `trust`: this host's, to name each running task's principal; without it every principal shows as unverified.
    /// `scanUnknownFields`: read queued files for fields dgrid does not know (`dgrid metrics` does not need them).
    public func counts(trust: TaskSignatureCheck? = nil, scanUnknownFields: Bool = true) throws(GridError) -> Counts {
        let snapshot = try connection.snapshot()
        var counts = try counts(in: snapshot, trust: trust, scanUnknownFields: scanUnknownFields)
        counts.backends = connection.backendStates(authorityMain: snapshot.mainTip)
        return counts
    }

    /// The counts of one listing (the dashboard reads every section from the same one).
    func counts(in snapshot: GridSnapshot, trust: TaskSignatureCheck? = nil, scanUnknownFields: Bool = true,
                now: Date = Date()) throws(GridError) -> Counts {
        guard snapshot.mainTip != nil else { throw .notInitialised(repository: connection.repositoryInUse) }
        var counts = Counts()
        counts.mainTip = snapshot.mainTip?.hex
        counts.gridID = try GridIdentity.read(snapshot, connection: connection)
        counts.queued = snapshot.queue.count
        counts.unplaceable = snapshot.unplaced.count
        counts.setAside = snapshot.files.others.keys.filter {
            $0.hasPrefix(SetAside.directory) && !$0.hasSuffix(SetAside.reasonSuffix)
        }.count
        counts.inProgress = snapshot.files.others.keys.filter { GridSnapshot.stem($0, under: GridSnapshot.inProgressDirectory) != nil }.count
        // The finished folders' `*.json` entries, counted over their names' bytes.
        let records = { (folder: String) in snapshot.files.folders[folder]?.count { $0.count > 5 && $0.suffix(5).elementsEqual(".json".utf8) } ?? 0 }
        counts.completed = records("tasks/completed/")
        counts.failed = records("tasks/failed/")
        counts.rejected = records(GridSnapshot.rejectedDirectory)
        for entry in snapshot.index.finishedTaskIDs.archive.allEntries() where snapshot.finishedPaths(of: entry.taskID).isEmpty {
            counts.archived[entry.folderStatus.rawValue, default: 0] += 1
        }
        // A late result is its record; the reason beside it is not another one.
        counts.late = snapshot.files.others.keys.filter { $0.hasPrefix(GridFold.lateDirectory) && $0.hasSuffix(".json" + LedgerLayout.logSuffix) }.count
        counts.claims = snapshot.claims.count
        counts.results = snapshot.results.count
        counts.nodes = snapshot.knownNodes.sorted()
        for location in snapshot.queue {
            let priority = location.priority ?? .normal
            counts.queuedByPriority[priority.rawValue, default: 0] += 1
        }
        if scanUnknownFields { (counts.unknownFields, counts.unknownFieldsUnscanned) = unknownFields(in: snapshot) }
        let claims = GridClaims(connection: connection)
        for (taskID, commit) in snapshot.claims.sorted(by: { $0.key < $1.key }) where snapshot.results[taskID] == nil {
            guard let record = try claims.record(at: commit) else { continue }
            let expired = ISOTime.parse(record.leaseUntil).map { $0 <= now } ?? true
            var running = Running(taskID: taskID, nodeID: record.nodeID, attempt: record.attempt,
                                  leaseUntil: record.leaseUntil, expired: expired || record.state == .released,
                                  state: record.state.rawValue, previousAttempts: record.previousAttempts.count)
            (running.principal, running.principalVerified) = try principal(of: taskID, in: snapshot, trust: trust)
            running.progress = record.progress
            running.checkpointed = snapshot.checkpoints[taskID] != nil
            counts.running.append(running)
        }
        for node in counts.nodes {
            // The heartbeat ref is newer than main's copy when both exist.
            let bytes: [UInt8]?
            if let commit = snapshot.nodes[node] {
                bytes = try? connection.file("node.json", of: commit, limit: 64 * 1024)
            } else if let blob = snapshot.files[LedgerLayout.nodePath(node: node)] {
                bytes = try connection.blob(blob, limit: 64 * 1024)
            } else {
                bytes = nil
            }
            if let record = bytes.flatMap(NodeRecord.parse) {
                counts.nodeRecords.append(NodeSummary(nodeID: record.nodeID, status: record.status, slots: record.slots,
                                                      lastHeartbeat: record.lastHeartbeat, health: record.health.word,
                                                      reason: record.health.reason, gitCircuit: record.gitCircuit,
                                                      reputation: record.reputation))
            }
        }
        return counts
    }

    /// The verified principal of a task (queued or in progress), or its unverified `submitter`.
    private func principal(of taskID: String, in snapshot: GridSnapshot, trust: TaskSignatureCheck?) throws(GridError) -> (String?, Bool) {
        guard let path = snapshot.queuePaths(of: taskID).first ?? snapshot.inProgressPaths(of: taskID).first else { return (nil, false) }
        if let trust, case .principal(let name) = try connection.signing(ofTaskAt: path, in: snapshot, check: trust) { return (name, true) }
        let limits = connection.settings.limits
        guard let blob = snapshot.files[path], let bytes = try? connection.blob(blob, limit: limits.maxFileBytes),
              case .success(let task) = TaskParser.parse(bytes, limits: limits) else { return (nil, false) }
        return (task.submitter, false)
    }

    /// Unknown fields of the queued tasks, read with the worker's own parser
    /// and limits, so the names are exactly what a worker will report. Files
    /// that do not parse (or are oversized) are the fold's to reject, not counted here.
    private func unknownFields(in snapshot: GridSnapshot) -> ([UnknownField], unscanned: Int) {
        let limits = connection.settings.limits
        var byField: [String: UnknownField] = [:]
        for location in snapshot.queue.prefix(Self.unknownFieldScanLimit) {
            // An oversized file is refused unread, as a worker refuses it.
            guard let blob = snapshot.files[location.path],
                  let bytes = try? connection.blob(blob, limit: limits.maxFileBytes) else { continue }
            guard case .success(let task) = TaskParser.parse(bytes, limits: limits) else { continue }
            for field in task.unknownFields {
                byField[field, default: UnknownField(field: field, queuedTasks: 0, exampleTask: task.taskID)].queuedTasks += 1
            }
        }
        let fields = byField.values.sorted { $0.field.utf8.lexicographicallyPrecedes($1.field.utf8) }
        return (fields, max(0, snapshot.queue.count - Self.unknownFieldScanLimit))
    }

    /// What the trust check needs from the grid (docs/ARCHITECTURE.md §9): its
    /// id, and the task ids that already have a result here (folded, or
    /// published and not yet folded).
    public func trustContext() throws(GridError) -> (grid: GridID?, finished: FinishedTasks) {
        let snapshot = try connection.snapshot()
        guard snapshot.mainTip != nil else { throw .notInitialised(repository: connection.repositoryInUse) }
        return (try GridIdentity.read(snapshot, connection: connection), snapshot.finishedTaskIDs.adding(snapshot.results.keys))
    }

    /// A task's result record: from main when folded, else from its result ref. nil when none yet.
    public func result(of taskID: String) throws(GridError) -> (record: ResultRecord, bytes: [UInt8], folded: Bool)? {
        guard TaskParser.isValidTaskID(taskID) else { throw .local("invalid task id '\(taskID)'") }
        let snapshot = try connection.snapshot()
        for blob in snapshot.foldedLogs(of: taskID) {
            let bytes = try connection.blob(blob, limit: 4 << 20)
            if let record = ResultRecord.parse(bytes), record.taskID == taskID { return (record, bytes, true) }
        }
        // Archived (docs/ARCHITECTURE.md §10): out of its bundle; a bundle that cannot give it says so.
        if snapshot.foldedLogs(of: taskID).isEmpty, let bytes = try connection.foldedRecord(of: taskID, in: snapshot) {
            guard let record = ResultRecord.parse(bytes), record.taskID == taskID else {
                throw .local("task \(taskID)'s archived record is not a result record of that task; the bundle was changed by hand")
            }
            return (record, bytes, true)
        }
        if let commit = snapshot.results[taskID],
           let (record, signed, _) = try GridResults(connection: connection).read(commit, maxTaskBytes: connection.settings.limits.maxFileBytes),
           record.taskID == taskID {
            return (record, signed.bytes, false)
        }
        return nil
    }
}

extension GridStatus {
    /// The trust in force on this grid for this host (docs/ARCHITECTURE.md §9): its own,
    /// with main's fleet policy beneath it when that holds, and what became of the fleet's.
    public func effectiveTrust(_ host: HostTrust, pin: PolicySerialPin?) throws(GridError) -> (HostTrust, FleetPolicy.Outcome) {
        try connection.fleetTrust(host, in: try connection.snapshot(), pin: pin)
    }
}
