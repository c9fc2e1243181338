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
    ///
    /// Signed tasks (docs/ARCHITECTURE.md §9): a file with an entry in
    /// `signatures` (its `.sig` and/or `.asc`, keyed by the file's name) is committed byte for
    /// byte with its signatures beside it — nothing may be added to what was
    /// signed, so `priority` must not change it. With `signer`, each other file
    /// gets this grid's id and is signed as committed. Signatures are checked
    /// for what a submitter can get wrong (they verify over the bytes, for
    /// `dgrid-task`, naming this grid); who may sign is each worker's host's
    /// decision.
    public func submit(_ files: [(name: String, bytes: [UInt8])], priority: TaskPriority?, submitter: String?,
                       flat: Bool = false, now: Date = Date(), attempts: Int = 12,
                       signatures: [String: TaskSignatureFiles] = [:], signer: TaskSigner? = nil,
                       policy: SubmitPolicy? = nil) throws(GridError) -> [Submitted] {
        var tasks: [TaskFile] = []
        // Task id → (exact bytes, signatures) for the signed ones.
        var signed: [String: (bytes: [UInt8], signature: TaskSignatureFiles)] = [:]
        var seen: Set<String> = []
        // File name of each task, for messages.
        var names: [String: String] = [:]
        var gridID: GridID?
        if !signatures.isEmpty || signer != nil {
            guard let id = try GridStatus(connection: connection).trustContext().grid else {
                throw .local("the grid has no id, so no signed task can name it: run `dgrid init --repo URL` first")
            }
            gridID = id
        }
        for file in files {
            switch TaskParser.parse(file.bytes, limits: connection.settings.limits) {
            case .failure(let rejection):
                throw .invalidTask(path: file.name, reason: rejection.reason)
            case .success(var task):
                guard seen.insert(task.taskID).inserted else {
                    throw .duplicateTask(taskID: task.taskID, whereFound: "given twice in this submission")
                }
                names[task.taskID] = file.name
                if let signature = signatures[file.name], !signature.isEmpty, let gridID {
                    if let priority, priority != task.priority {
                        throw .invalidTask(path: file.name, reason: "signed as \(task.priority.rawValue) priority; --priority would change what was signed")
                    }
                    try Self.checkSigned(task, bytes: file.bytes, signature: signature, grid: gridID, name: file.name)
                    signed[task.taskID] = (file.bytes, signature)
                    tasks.append(task)
                    continue
                }
                if let priority { task.priority = priority }
                if task.createdAt == nil { task.createdAt = ISOTime.string(now) }
                if task.submitter == nil { task.submitter = submitter }
                if let signer, let gridID {
                    if task.grid == nil { task.grid = gridID.value }
                    let bytes = TaskParser.encode(task, now: now)
                    let signature = try signer.signature(over: bytes)
                    try Self.checkSigned(task, bytes: bytes, signature: TaskSignatureFiles(ssh: signature), grid: gridID, name: file.name)
                    signed[task.taskID] = (bytes, TaskSignatureFiles(ssh: signature))
                }
                tasks.append(task)
            }
        }
        let shards = connection.settings.shardCount
        var backoff = ContentionBackoff()
        for attempt in 0..<attempts {
            if attempt > 0 { backoff.wait() }
            let snapshot = try connection.snapshot()
            guard let main = snapshot.mainTip else { throw .notInitialised(repository: connection.repositoryInUse) }
            try refuseDuplicates(tasks, in: snapshot)
            try refuseBadDependencies(tasks, names: names, in: snapshot)
            if let policy {
                try policy.check(tasks, signed: signed, names: names, snapshot: snapshot, connection: connection, now: now)
            }
            var changes: [LedgerChange] = []
            var submitted: [Submitted] = []
            for task in tasks {
                let path = flat ? LedgerLayout.flatQueuePath(taskID: task.taskID)
                    : LedgerLayout.queuePath(priority: task.priority,
                                             shard: ShardPolicy.shard(of: task.taskID, count: shards), taskID: task.taskID)
                if let (bytes, signature) = signed[task.taskID] {
                    changes.append(LedgerChange(path: path, content: bytes))
                    for suffix in TaskSignatureFiles.suffixes {
                        if let file = signature[suffix] { changes.append(LedgerChange(path: path + suffix, content: file)) }
                    }
                } else {
                    changes.append(LedgerChange(path: path, content: TaskParser.encode(task)))
                }
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

    /// What a submitter can get wrong, in the words a worker would use: the
    /// same checks, less the host's trust (`TaskSignatureCheck`).
    static func checkSigned(_ task: TaskFile, bytes: [UInt8], signature: TaskSignatureFiles, grid: GridID, name: String) throws(GridError) {
        do {
            if let ssh = signature.ssh { _ = try TaskSignatureCheck.signingKeys(of: bytes, signatureFile: ssh) }
            // OpenPGP signatures are checked against a keyring only workers hold: here, only that it is one.
            if let openPGP = signature.openPGP, !openPGP.starts(with: Array("-----BEGIN PGP SIGNATURE-----".utf8)) {
                throw TaskTrustRefusal.openPGP(.badSignature("\(name)\(TaskSignatureFiles.openPGPSuffix) is not an armored OpenPGP signature"))
            }
            try TaskSignatureCheck.checkNamesGrid(task, grid: grid)
        } catch {
            throw .invalidTask(path: name, reason: "\(error)")
        }
    }

    /// The host's policy applied before anything is pushed (docs/ARCHITECTURE.md §9), in
    /// the words a worker uses: images and per-task maxima per principal, the
    /// principal's and the grid's queue limits, and the grid's submission rate.
    public struct SubmitPolicy: Sendable {
        public let check: TaskSignatureCheck
        public let admission: TaskAdmission

        public init(check: TaskSignatureCheck, admission: TaskAdmission) {
            self.check = check
            self.admission = admission
        }

        func check(_ tasks: [TaskFile], signed: [String: (bytes: [UInt8], signature: TaskSignatureFiles)], names: [String: String],
                   snapshot: GridSnapshot, connection: GridConnection, now: Date) throws(GridError) {
            let policy = check.trust.policy
            var adding: [String: Int] = [:]
            for task in tasks {
                let name = names[task.taskID] ?? task.taskID
                let bucket: String
                if let (bytes, signature) = signed[task.taskID] {
                    // Signed by a key this host does not trust: the worker refuses it; there is no principal to count.
                    guard let principal = check.principal(bytes: bytes, signatures: signature, now: now) else { continue }
                    bucket = principal
                } else {
                    guard check.allowUnsigned else { continue }
                    bucket = QuotaBook.unsignedBucket
                }
                do {
                    _ = try admission.admit(task, principal: QuotaBook.principal(ofBucket: bucket))
                } catch {
                    throw .invalidTask(path: name, reason: "refused by this host's policy: \(error)")
                }
                adding[bucket, default: 0] += 1
            }
            guard policy.hasLedgerQuotas || policy.global.maxSubmissionsPerMinute != nil else { return }
            let book = try QuotaBook.build(snapshot: snapshot, connection: connection, check: check, live: Set(snapshot.claims.keys), now: now)
            for (bucket, count) in adding.sorted(by: { $0.key < $1.key }) {
                let queued = book.queued[bucket]?.count ?? 0
                if let maximum = book.limits(bucket).maxQueuedTasks, queued + count > maximum {
                    throw .local("refused by this host's policy: " + AdmissionRefusal.queueFull(
                        who: AdmissionRefusal.who(QuotaBook.principal(ofBucket: bucket)), queued: queued + count, maximum: maximum).description)
                }
            }
            // Counted as a worker counts it (`QuotaBook`): waiting files, with no claim yet.
            if let maximum = policy.global.maxQueue, book.queuedTotal + tasks.count > maximum {
                throw .local("refused by this host's policy: " + AdmissionRefusal.gridQueueFull(queued: book.queuedTotal + tasks.count, maximum: maximum).description)
            }
            if let maximum = policy.global.maxSubmissionsPerMinute {
                // Times as written by each submitter: compared as times, not as text (offsets and fractions vary).
                let since = now.addingTimeInterval(-60)
                var recent = 0
                for location in snapshot.queue {
                    guard let blob = snapshot.files[location.path],
                          let created = ISOTime.parse(try connection.queuedHeader(blob).createdAt) else { continue }
                    if created >= since { recent += 1 }
                }
                if recent + tasks.count > maximum {
                    throw .local("refused by this host's policy: " + AdmissionRefusal.submissionRate(submitted: recent + tasks.count, maximum: maximum).description)
                }
            }
        }
    }

    /// docs/ARCHITECTURE.md §10: every dependency is in this submission or on the
    /// grid, and no dependency cycle forms — with the queue as it is, since a
    /// queued task may already name one of the new ids. All or nothing.
    private func refuseBadDependencies(_ tasks: [TaskFile], names: [String: String], in snapshot: GridSnapshot) throws(GridError) {
        guard tasks.contains(where: { !$0.dependsOn.isEmpty }) else { return }
        let batch = Set(tasks.map(\.taskID))
        let standing = DependencyIndex.standing(in: snapshot)
        for task in tasks {
            for dependency in task.dependsOn where !batch.contains(dependency) && standing(dependency) == .unknown {
                throw .invalidTask(path: names[task.taskID] ?? task.taskID,
                                   reason: "depends on task \(dependency), which is neither in this submission nor on the grid")
            }
        }
        var nodes = try connection.dependencies(of: snapshot).graph.nodes
        for task in tasks where !task.dependsOn.isEmpty {
            nodes[task.taskID] = TaskGraph.Node(dependsOn: task.dependsOn, mode: task.dependencyMode ?? .default)
        }
        let cycles = TaskGraph(nodes: nodes).cycles
        for task in tasks {
            if let cycle = cycles[task.taskID] {
                throw .invalidTask(path: names[task.taskID] ?? task.taskID, reason: "dependency cycle: \(cycle)")
            }
        }
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
