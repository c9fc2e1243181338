import Foundation

/// `dgrid submit`: validates task files, then writes them to
/// `tasks/queue/<priority>/<shard>/<id>.json` on main in one commit,
/// compare-and-swap on main's tip (retried when another submitter or a fold
/// moved it). All or nothing: one invalid or duplicate task refuses the batch.
public struct GridSubmit {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public struct Submitted: Sendable {
        public let taskID: String
        public let path: String
    }

    /// `files`: (name for messages, bytes). `priority` overrides the files' own.
    /// `flat`: D-GRID's `tasks/queue/<task_id>.json` instead of the nested
    /// layout, for grids whose queue D-GRID's dashboard counts (it globs
    /// `tasks/queue/*.json`, one level); priority is then read from the file.
    public func submit(_ files: [(name: String, bytes: [UInt8])], priority: TaskPriority?, submitter: String?,
                       flat: Bool = false, now: Date = Date(), attempts: Int = 8) throws(GridError) -> [Submitted] {
        var tasks: [TaskFile] = []
        var seen: Set<String> = []
        for file in files {
            switch TaskParser.parse(file.bytes, limits: connection.settings.limits) {
            case .failure(let rejection):
                throw .invalidTask(path: file.name, reason: rejection.reason)
            case .success(var task):
                guard seen.insert(task.taskID).inserted else {
                    throw .duplicateTask(taskID: task.taskID, whereFound: "given twice in this submission")
                }
                if let priority { task.priority = priority }
                if task.createdAt == nil { task.createdAt = ISOTime.string(now) }
                if task.submitter == nil { task.submitter = submitter }
                tasks.append(task)
            }
        }
        let shards = connection.settings.shardCount
        for _ in 0..<attempts {
            let snapshot = try connection.snapshot()
            guard let main = snapshot.mainTip else { throw .notInitialised(repository: connection.settings.repository) }
            try refuseDuplicates(tasks, in: snapshot)
            var changes: [LedgerChange] = []
            var submitted: [Submitted] = []
            for task in tasks {
                let path = flat ? LedgerLayout.flatQueuePath(taskID: task.taskID)
                    : LedgerLayout.queuePath(priority: task.priority,
                                             shard: ShardPolicy.shard(of: task.taskID, count: shards), taskID: task.taskID)
                changes.append(LedgerChange(path: path, content: TaskParser.encode(task)))
                submitted.append(Submitted(taskID: task.taskID, path: path))
            }
            let message = tasks.count == 1 ? "submit \(tasks[0].taskID)" : "submit \(tasks.count) tasks"
            let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
                let commit = try ledger.commit(parent: main, changes: changes, message: message)
                return try ledger.updateRef(GridConnection.mainRef, from: main, to: commit)
            }
            if outcome == .applied { return submitted }
        }
        throw .contention(operation: "submit", attempts: attempts)
    }

    private func refuseDuplicates(_ tasks: [TaskFile], in snapshot: GridSnapshot) throws(GridError) {
        let queued = Set(snapshot.queue.map(\.taskID))
        let finished = snapshot.finishedTaskIDs
        for task in tasks {
            let id = task.taskID
            if queued.contains(id) { throw .duplicateTask(taskID: id, whereFound: "queued") }
            if !snapshot.inProgressPaths(of: id).isEmpty || snapshot.claims[id] != nil {
                throw .duplicateTask(taskID: id, whereFound: "running")
            }
            if finished.contains(id) || snapshot.results[id] != nil { throw .duplicateTask(taskID: id, whereFound: "finished") }
        }
    }
}
