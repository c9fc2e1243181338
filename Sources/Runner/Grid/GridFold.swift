import Synchronization
import Foundation
import Sandbox
import Trust

/// The fold (docs/ARCHITECTURE.md §6): one batched commit on main that moves claimed tasks
/// to `in_progress/`, finished ones to `completed/`, `failed/` or `rejected/`
/// with their `.log`, refreshes `nodes/`, and then deletes the result and
/// claim refs it folded. main is only ever moved by compare-and-swap from the
/// tip the fold read, so two folders racing cannot both apply; folding again
/// finds nothing to do. A result for a task main already shows as finished, or
/// whose destination another record holds, is kept under `tasks/late/` with the
/// reason: never a second completed file, never written over another record.
public struct GridFold {
    let connection: GridConnection
    /// Whose records count (`WorkerTrust`); nil: this host's, read at each run.
    var workerTrust: WorkerTrust?
    /// Where refused records are reported; nil: this host's audit log.
    var audit: AuditLog?

    public init(connection: GridConnection, workerTrust: WorkerTrust? = nil, audit: AuditLog? = nil) {
        self.connection = connection
        self.workerTrust = workerTrust
        self.audit = audit
    }

    /// Heartbeat and claim commits already reported refused by this process: the fold
    /// sees a forged ref at every run until it moves, and says so once.
    private static let reportedRefusals = Mutex<Set<GitOID>>([])

    public struct Summary: Sendable, CustomStringConvertible {
        public var finished = 0, started = 0, rejected = 0, late = 0, nodes = 0
        /// Queued tasks ended because a dependency's outcome rules them out (docs/ARCHITECTURE.md §10), counted in `finished` too.
        public var skipped = 0
        /// Queue files the fold could not place, moved to `tasks/rejected/unplaced/` with a reason.
        public var setAside = 0
        /// Late results kept because their destination held another record (counted in `late` too).
        public var conflicts = 0
        /// Results not taken because their signature did not hold for the node they name (`WorkerTrust`): dropped, audited.
        public var refused = 0
        /// Votes of quorum tasks decided against them (docs/ARCHITECTURE.md §11): kept on main, audited.
        public var outvoted = 0
        public var mainMoved = false

        public var description: String {
            let refusedNote = refused > 0 ? "; refused \(refused) results not signed by a key this host accepts for their node (see `dgrid audit`)" : ""
            guard mainMoved else { return "nothing to fold" + refusedNote }
            var base = "folded \(finished) finished (\(rejected) rejected\(skipped > 0 ? ", \(skipped) skipped" : "")), \(started) started, \(late) late results, \(nodes) node records"
            if outvoted > 0 { base += ", \(outvoted) votes outvoted" }
            if setAside > 0 { base += ", \(setAside) unplaceable queue files set aside in tasks/rejected/unplaced/" }
            return (conflicts == 0 ? base : base + " (\(conflicts) late for a name already taken; see tasks/late/*.reason)") + refusedNote
        }
    }

    public func run(attempts: Int = 8) throws(GridError) -> Summary {
        var backoff = ContentionBackoff()
        var fold = self
        if fold.workerTrust == nil { fold.workerTrust = try Self.hostWorkerTrust(connection.settings.state) }
        if fold.audit == nil { fold.audit = try? AuditLog(state: connection.settings.state) }
        for attempt in 0..<attempts {
            if attempt > 0 { backoff.wait() }
            let snapshot = try connection.snapshot()
            guard let main = snapshot.mainTip else { throw .notInitialised(repository: connection.repositoryInUse) }
            let (changes, folded, summary) = try fold.plan(snapshot)
            if !changes.isEmpty {
                let list = changes.sorted { $0.key < $1.key }.map { LedgerChange(path: $0.key, content: $0.value) }
                var moved = summary
                moved.mainMoved = true
                let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
                    let commit = try ledger.commit(parent: main, changes: list, message: "dgrid fold: \(moved)")
                    return try ledger.updateRef(GridConnection.mainRef, from: main, to: commit)
                }
                guard outcome == .applied else { continue }
            }
            // Only once main records them: a crash before this leaves refs the next fold deletes.
            // One push for all of them; a ref that moved since (renewed, or deleted by a racing folder) stays.
            let deletions = folded.map { RefMove($0.0, from: $0.1, to: nil) }
            _ = try connection.withLedger { (ledger) throws(LedgerError) in try ledger.moveRefs(deletions) }
            var result = summary
            result.mainMoved = !changes.isEmpty
            return result
        }
        throw .contention(operation: "fold", attempts: attempts)
    }

    /// This host's worker trust; a trust file it cannot read stops the fold (it could not tell whose results to take).
    static func hostWorkerTrust(_ state: StateDirectory) throws(GridError) -> WorkerTrust {
        do {
            return try WorkerTrust.load(state: state, trust: try HostTrust.load(state: state))
        } catch {
            throw .local("cannot decide whose results to fold: \(error)")
        }
    }

    /// A node record that announces a key other than the one that signed it: someone else's key, claimed.
    static func announcedKeyRefusal(_ record: NodeRecord, signature: [UInt8]?, trust: WorkerTrust) -> WorkerTrust.Refusal? {
        guard trust.mode != .off, let announced = record.publicKey, let signature,
              let signer = try? SSHSignature(armored: signature).publicKey.plain else { return nil }
        let claimed = try? SSHPublicKey(line: announced)
        guard claimed != signer else { return nil }
        return WorkerTrust.Refusal(reason: "the node record announces key \(claimed?.fingerprint ?? "(unreadable)") but is signed by \(signer.fingerprint): it claims someone else's key",
                                   fingerprint: signer.fingerprint)
    }

    /// Reports a refused record once per commit per process (results are dropped, so they come once anyway).
    func report(_ kind: AuditEvent.Kind, _ refusal: WorkerTrust.Refusal, commit: GitOID, nodeID: String, taskID: String?) {
        guard Self.reportedRefusals.withLock({ $0.insert(commit).inserted }) else { return }
        audit?.record(AuditEvent(kind: kind, nodeID: nodeID, taskID: taskID, fingerprints: refusal.fingerprint.map { [$0] } ?? [],
                                 reason: "\(refusal.reason) (commit \(commit))"))
    }

    /// What the fold would write on main, and the refs it may then delete.
    func plan(_ snapshot: GridSnapshot) throws(GridError) -> (changes: [String: [UInt8]?], folded: [(String, GitOID)], summary: Summary) {
        var changes: [String: [UInt8]?] = [:]
        var folded: [(String, GitOID)] = []
        var summary = Summary()
        let trust: WorkerTrust
        if let given = workerTrust { trust = given } else { trust = try Self.hostWorkerTrust(connection.settings.state) }
        let finished = snapshot.finishedTaskIDs
        let maxTaskBytes = connection.settings.limits.maxFileBytes
        let results = GridResults(connection: connection)
        // This host's reputation policy (`ReputationGate`): results and claims of nodes it refuses are not taken.
        let gate = ReputationGate.of(connection, trust: trust, at: snapshot)
        // Results this fold puts in a folder: the dependency verdicts below count them as finished.
        var finishing: [String: ResultRecord] = [:]
        // Every commit the fold reads, fetched with one connection rather than one each.
        // Quorum tasks' votes and replica claims too: `QuorumVotes` reads each.
        try connection.prefetch(Array(snapshot.results.values) + Array(snapshot.nodes.values)
                                + snapshot.claims.filter { snapshot.results[$0.key] == nil && !finished.contains($0.key) }.map(\.value)
                                + snapshot.votes.values.flatMap(\.values) + snapshot.replicaClaims.values.flatMap(\.values))

        for (taskID, commit) in snapshot.results.sorted(by: { $0.key < $1.key }) {
            let read: (record: ResultRecord, signed: SignedRecord, task: [UInt8])?
            do {
                read = try results.read(commit, maxTaskBytes: maxTaskBytes)
            } catch GridError.objectGone {
                continue  // folded by someone else since our listing
            }
            // Folded (or, when unreadable or forged, dropped so the task can run again).
            folded.append((GridResults.refName(taskID), commit))
            guard let (record, signed, task) = read,
                  record.taskID == taskID, LedgerLayout.isValidNodeID(record.nodeID) else {
                if let record = read?.record, record.taskID != taskID {
                    // Another task's record, however well signed: a replay, said as one.
                    report(.resultRefused, WorkerTrust.Refusal(reason: "the record is task \(record.taskID)'s, published as task \(taskID)'s: a replay", fingerprint: nil),
                           commit: commit, nodeID: record.nodeID, taskID: taskID)
                    summary.refused += 1
                    continue  // the task's own claim, if any, is its holder's: left alone
                }
                if let claim = snapshot.claims[taskID] { folded.append((GridClaims.refName(taskID), claim)) }
                continue
            }
            // Not the named node's word by this host's trust: dropped, its claim left alone —
            // the claim's holder still publishes its own result, or the lease lapses and the task runs again.
            let recordBytes = signed.bytes
            if let refused = trust.refusal(of: signed, nodeID: record.nodeID) {
                report(.resultRefused, refused, commit: commit, nodeID: record.nodeID, taskID: taskID)
                summary.refused += 1
                continue
            }
            if let claim = snapshot.claims[taskID] { folded.append((GridClaims.refName(taskID), claim)) }
            if let gate, let why = try gate.refusal(record.nodeID, gated: try isGated(taskID, in: snapshot)) {
                // Its claim goes too (appended above): the task runs again on a node this host takes work from.
                report(.resultRefused, WorkerTrust.Refusal(reason: "\(why): its result of task \(taskID) is not taken", fingerprint: nil),
                       commit: commit, nodeID: record.nodeID, taskID: taskID)
                summary.refused += 1
                continue
            }
            if try isReplicated(taskID, in: snapshot) {
                // One node's word is no quorum: a replicated task is decided by its replicas' votes only.
                report(.resultRefused, WorkerTrust.Refusal(reason: "a single result for quorum task \(taskID): only its replicas' votes decide it", fingerprint: nil),
                       commit: commit, nodeID: record.nodeID, taskID: taskID)
                summary.refused += 1
                continue
            }
            if finished.contains(taskID) {
                // Folded already (by us, or by a folder racing us that has not
                // deleted the ref yet): the same record on main is no late result.
                var sameRecord = false
                for blob in snapshot.foldedLogs(of: taskID) where try connection.blob(blob, limit: 4 << 20) == recordBytes {
                    sameRecord = true
                }
                if sameRecord { continue }
                let reason = "task \(taskID) is already folded as \(snapshot.finishedPaths(of: taskID).joined(separator: ", ")); "
                    + "this later result (node \(record.nodeID), attempt \(record.attempt)) is kept here, not folded over it"
                keepLate(record, bytes: recordBytes, commit: commit, reason: reason, snapshot: snapshot, changes: &changes, summary: &summary)
                continue
            }
            let destination: String
            switch record.status {
            case .completed: destination = LedgerLayout.completedPath(node: record.nodeID, taskID: taskID)
            case .rejected: destination = LedgerLayout.rejectedPath(taskID: taskID)
            case .failed, .skipped: destination = LedgerLayout.failedPath(node: record.nodeID, taskID: taskID)
            }
            // The task ran: its queue and in_progress files go, found by their exact names (never by suffix).
            let signature = removeTaskFiles(snapshot.queuePaths(of: taskID) + snapshot.inProgressPaths(of: taskID), in: snapshot, changes: &changes)
            if let occupant = try occupant(of: destination, in: snapshot, planned: changes) {
                // Never written over: the result is kept, with why, and the task does not run again.
                let reason = "\(occupant); a fold never overwrites a record, so this result of task \(taskID) "
                    + "from node \(record.nodeID) is kept here instead of at \(destination)"
                keepLate(record, bytes: recordBytes, commit: commit, reason: reason, snapshot: snapshot, changes: &changes, summary: &summary)
                summary.conflicts += 1
                continue
            }
            if record.status == .rejected { summary.rejected += 1 }
            var taskBytes = task
            if taskBytes.isEmpty, let queued = snapshot.queuePaths(of: taskID).first, let blob = snapshot.files[queued] {
                taskBytes = try connection.blob(blob, limit: maxTaskBytes + 1)
            }
            writeTask(taskBytes, signature: signature, to: destination, changes: &changes)
            changes[destination + LedgerLayout.logSuffix] = recordBytes
            // The node's signature stays beside its record: anyone can check who published
            // each result on main, long after the result ref is gone (`dgrid reputation`, docs/ARCHITECTURE.md §11).
            if let signature = signed.signature { changes[destination + LedgerLayout.logSuffix + NodeKey.signatureSuffix] = signature }
            try keepArtifacts(of: record, from: commit, snapshot: snapshot, changes: &changes)
            summary.finished += 1
            finishing[taskID] = record
        }
        try foldQuorums(snapshot, trust: trust, gate: gate, finishing: &finishing, changes: &changes, folded: &folded, summary: &summary)
        try endUnrunnable(snapshot, finishing: finishing, changes: &changes, summary: &summary)
        // A finished task's checkpoints are of no use to anyone: deleted with its result (docs/ARCHITECTURE.md §10).
        for (taskID, commit) in snapshot.checkpoints.sorted(by: { $0.key < $1.key })
        where finishing[taskID] != nil || finished.contains(taskID) {
            folded.append((CheckpointStore.refName(taskID), commit))
        }

        // A claim left on a finished task (renewed after the fold that took its
        // result had listed it, or released late) binds nothing: drop it.
        for (taskID, commit) in snapshot.claims where snapshot.results[taskID] == nil && finished.contains(taskID) {
            folded.append((GridClaims.refName(taskID), commit))
        }
        let claims = GridClaims(connection: connection)
        for (taskID, commit) in snapshot.claims.sorted(by: { $0.key < $1.key })
        where snapshot.results[taskID] == nil && !finished.contains(taskID) {
            // A released claim binds nobody: the task stays where it is until the next holder's claim.
            guard let record = try claims.record(at: commit), record.taskID == taskID, record.state == .held,
                  LedgerLayout.isValidNodeID(record.nodeID) else { continue }
            // A plain claim on a quorum task would keep its replicas' refs from being made (`ReplicaRefs`): dropped.
            if try isReplicated(taskID, in: snapshot) {
                report(.claimRefused, WorkerTrust.Refusal(reason: "a plain claim on quorum task \(taskID): its runs are claimed replica by replica", fingerprint: nil),
                       commit: commit, nodeID: record.nodeID, taskID: taskID)
                folded.append((GridClaims.refName(taskID), commit))
                continue
            }
            // A claim in another node's name (or unsigned) puts no task in progress under that name.
            if let refused = try claims.refusal(at: commit, record: record, trust: trust) {
                report(.claimRefused, refused, commit: commit, nodeID: record.nodeID, taskID: taskID)
                continue
            }
            // Nor one by a node this host's reputation policy refuses that work: dropped, so another node takes the task.
            if let gate, let why = try gate.refusal(record.nodeID, gated: try isGated(taskID, in: snapshot)) {
                report(.claimRefused, WorkerTrust.Refusal(reason: "\(why): its claim on task \(taskID) is refused", fingerprint: nil),
                       commit: commit, nodeID: record.nodeID, taskID: taskID)
                folded.append((GridClaims.refName(taskID), commit))
                continue
            }
            let target = LedgerLayout.inProgressPath(node: record.nodeID, taskID: taskID)
            guard snapshot.files[target] == nil else { continue }
            // The task file moves from the queue, or from the in_progress name of the worker it was taken from.
            guard let source = snapshot.queuePaths(of: taskID).first ?? snapshot.inProgressPaths(of: taskID).first,
                  let blob = snapshot.files[source] else { continue }
            let signature = removeTaskFiles(snapshot.queuePaths(of: taskID) + snapshot.inProgressPaths(of: taskID), in: snapshot, changes: &changes)
            writeTask(try connection.blob(blob, limit: maxTaskBytes + 1), signature: signature, to: target, changes: &changes)
            summary.started += 1
        }

        for (node, commit) in snapshot.nodes.sorted(by: { $0.key < $1.key }) {
            let beat: SignedRecord?
            do {
                beat = try connection.signedRecord("node.json", of: commit, limit: 64 * 1024)
            } catch GridError.objectGone {
                continue  // beat again since the listing; the next fold takes the new one
            }
            guard let beat, var record = NodeRecord.parse(beat.bytes), record.nodeID == node else { continue }
            var bytes = beat.bytes
            // One verdict per heartbeat commit: a worker's fold sees most nodes' last beat again and again.
            // The announced key first: a record claiming another's key pins nothing.
            let verdict = try connection.memoized("heartbeat-verdict", commit) { () -> WorkerTrust.Refusal? in
                Self.announcedKeyRefusal(record, signature: beat.signature, trust: trust) ?? trust.refusal(of: beat, nodeID: node)
            }
            if let refused = verdict {
                report(.heartbeatRefused, refused, commit: commit, nodeID: node, taskID: nil)
                continue
            }
            // Its heartbeats stopped without a last "stopped" beat: main says so (docs/ARCHITECTURE.md §12).
            if record.isSilent(now: Date(), fallbackSeconds: connection.settings.leaseSeconds) {
                record.status = "offline"
                bytes = record.json()
            }
            let path = LedgerLayout.nodePath(node: node)
            let current = try snapshot.files[path].map { (blob) throws(GridError) in try connection.blob(blob, limit: 64 * 1024) }
            if current != bytes {
                changes[path] = bytes
                summary.nodes += 1
            }
        }
        setAsideUnplaced(snapshot, changes: &changes, summary: &summary)
        return (changes, folded, summary)
    }

    /// A result's Git-stored artifacts move from its commit to main's
    /// content-addressed `artifacts/sha256/<hex>` (docs/ARCHITECTURE.md §10): the
    /// result ref goes with this fold, the artifacts stay reachable. One the
    /// commit lacks or that is larger than the Git store takes is left out; a
    /// download of it then says it is missing.
    func keepArtifacts(of record: ResultRecord, from commit: GitOID, snapshot: GridSnapshot,
                               changes: inout [String: [UInt8]?]) throws(GridError) {
        let all = record.artifacts + [record.stdoutArtifact, record.stderrArtifact].compactMap { $0 }
        for artifact in all where artifact.store == .git && artifact.size <= OutputHarvest.gitMaxBytes {
            let path = ArtifactLocation.onMain(artifact.digest)
            guard snapshot.files[path] == nil, changes[path] == nil,
                  let bytes = try? connection.file(ArtifactLocation.inResult(artifact.digest), of: commit, limit: Int(OutputHarvest.gitMaxBytes)),
                  Digest(of: bytes) == artifact.digest else { continue }
            changes[path] = bytes
        }
    }

    /// Queued tasks that will never run (docs/ARCHITECTURE.md §10): a dependency
    /// outcome rules them out (skipped, into `failed/`), or they sit on a
    /// dependency cycle or name a task the grid never had (into `rejected/`).
    private func endUnrunnable(_ snapshot: GridSnapshot, finishing: [String: ResultRecord],
                               changes: inout [String: [UInt8]?], summary: inout Summary) throws(GridError) {
        let maxTaskBytes = connection.settings.limits.maxFileBytes
        for ending in try DependencyFold(connection: connection, snapshot: snapshot, finishing: finishing).endings() {
            let queued = snapshot.queuePaths(of: ending.taskID)
            guard let source = queued.first, let blob = snapshot.files[source], changes[source] == nil,
                  try occupant(of: ending.destination, in: snapshot, planned: changes) == nil else { continue }
            let bytes = try connection.blob(blob, limit: maxTaskBytes + 1)
            let signature = removeTaskFiles(queued, in: snapshot, changes: &changes)
            writeTask(bytes, signature: signature, to: ending.destination, changes: &changes)
            changes[ending.destination + LedgerLayout.logSuffix] = ending.record.json()
            summary.finished += 1
            if ending.record.status == .skipped { summary.skipped += 1 } else { summary.rejected += 1 }
        }
    }

    /// Deletes a task's files at `paths` and the signature files beside each
    /// (`.sig`, `.asc`); returns the first of each kind, which travel with the
    /// task. One a writer made too large or unreadable is dropped, not read: a
    /// worker refuses the task for it, and the fold must not stall on it.
    func removeTaskFiles(_ paths: [String], in snapshot: GridSnapshot, changes: inout [String: [UInt8]?]) -> TaskSignatureFiles {
        var signatures = TaskSignatureFiles()
        for path in paths {
            changes[path] = .some(nil)
            for suffix in TaskSignatureFiles.suffixes {
                guard let blob = snapshot.files[path + suffix] else { continue }
                changes[path + suffix] = .some(nil)
                if signatures[suffix] == nil { signatures[suffix] = try? connection.blob(blob, limit: TaskSignatureFiles.maxBytes) }
            }
        }
        return signatures
    }

    /// Writes a task's bytes at `path`, with its signatures beside them.
    func writeTask(_ bytes: [UInt8], signature: TaskSignatureFiles, to path: String, changes: inout [String: [UInt8]?]) {
        changes[path] = bytes
        for suffix in TaskSignatureFiles.suffixes {
            if let file = signature[suffix] { changes[path + suffix] = file }
        }
    }

    /// Queue files no worker can read (a bad id in the name, an unknown depth,
    /// a name that is no task file) are moved, byte for byte, to
    /// `tasks/rejected/unplaced/` with a `.reason` beside them (`SetAside`):
    /// neither run, nor silently left, nor lost. One too large to read stays
    /// where it is and is counted by `status`.
    private func setAsideUnplaced(_ snapshot: GridSnapshot, changes: inout [String: [UInt8]?], summary: inout Summary) {
        let limit = connection.settings.limits.maxFileBytes
        // A writer can flood the queue: one fold holds at most this much of it in
        // memory; the rest waits, counted, for the next fold.
        var budget = SetAside.maxBytesPerFold
        for file in snapshot.unplaced.prefix(SetAside.maxPerFold) where changes[file.path] == nil {
            guard budget > 0, let destination = SetAside.destination(of: file, in: snapshot.files) else { continue }
            if let blob = file.blob {
                guard let bytes = try? connection.blob(blob, limit: min(limit, budget)) else { continue }
                budget -= bytes.count
                changes[destination] = bytes
            }
            changes[destination + SetAside.reasonSuffix] = SetAside.reason(for: file, node: connection.settings.nodeID)
            changes[file.path] = .some(nil)
            summary.setAside += 1
        }
    }

    static let lateDirectory = "tasks/late/"

    /// A result that cannot be folded where its name says, kept as it was
    /// under `tasks/late/<node>-<task>-<commit>.json.log`, with the reason
    /// beside it in `….reason`: nothing overwritten, nothing lost.
    func keepLate(_ record: ResultRecord, bytes: [UInt8], commit: GitOID, reason: String, snapshot: GridSnapshot,
                          changes: inout [String: [UInt8]?], summary: inout Summary) {
        let stem = "\(Self.lateDirectory)\(record.nodeID)-\(record.taskID)-\(commit.hex.prefix(12))"
        let path = stem + ".json" + LedgerLayout.logSuffix
        guard snapshot.files[path] == nil else { return }
        changes[path] = bytes
        changes[stem + ".reason"] = Array((reason + "\n").utf8)
        summary.late += 1
    }

    /// What already holds `destination` or its `.log` — on main, or written
    /// by this same fold — in words for the late record; nil when both are free.
    /// Exact names make this unreachable for honest workers (a name on main is
    /// its task's, so the task shows as finished first); a repository writer's
    /// stray `.log` still must not be written over.
    func occupant(of destination: String, in snapshot: GridSnapshot,
                          planned changes: [String: [UInt8]?]) throws(GridError) -> String? {
        let log = LedgerLayout.logPath(for: destination)
        if case .some(.some(let bytes)) = changes[log] {
            return "\(log) is written by this fold from another result (\(Self.describe(bytes)))"
        }
        if let blob = snapshot.files[log] {
            let bytes: [UInt8]?
            do {
                bytes = try connection.blob(blob, limit: 4 << 20)
            } catch {
                // A writer's oversized or broken blob: say so, never fail every fold on it.
                bytes = nil
            }
            return "\(log) is already on main and holds \(bytes.map(Self.describe) ?? "a file this fold cannot read")"
        }
        if case .some(.some) = changes[destination] { return "\(destination) is written by this fold from another result" }
        if snapshot.files[destination] != nil { return "\(destination) is already on main" }
        return nil
    }

    private static func describe(_ bytes: [UInt8]) -> String {
        guard let record = ResultRecord.parse(bytes) else { return "no readable result record" }
        return "a record of task \(record.taskID) from node \(record.nodeID)"
    }
}
