import Foundation
import Trust

/// `dgrid reputation` (docs/ARCHITECTURE.md §11): each node's record, computed only
/// from signed history on the grid — the folded records on main and in the
/// archive's bundles, each counted only when its `.log.sig` holds for the node it
/// names under this host's worker trust. Anyone with the same trust files reads the
/// same grid and gets the same numbers; nothing a node says about itself (a
/// `reputation` field in its node record) is read.
public struct NodeReputation {
    let connection: GridConnection
    let trust: WorkerTrust

    public init(connection: GridConnection, trust: WorkerTrust) {
        self.connection = connection
        self.trust = trust
    }

    public struct Node: Sendable, Codable, Equatable {
        public var nodeID: String
        /// Results folded as the task's result (completed, failed, rejected or skipped), signed by the node.
        public var accepted = 0
        /// Of those, ended by the task failing (exit code not 0, or killed) — `failed/` — other than by its timeout.
        public var failures = 0
        /// Of those, ended by the task's timeout.
        public var timeouts = 0
        /// Attempts of this node that other nodes' signed records show ended because its lease ran out.
        public var leasesLost = 0
        /// Votes on quorum tasks decided against them (a wrong result, well formed and signed).
        public var outvoted = 0
        /// Its latest results in a row that completed, counted back from the newest (BOINC's consecutive valid results).
        public var consecutiveValid = 0
        /// (failures + timeouts + leases lost) / (accepted + leases lost); 0 for a node with nothing counted.
        public var errorRate = 0.0
        public var lastResultAt: String?

        enum CodingKeys: String, CodingKey {
            case nodeID = "node_id", accepted = "results_accepted", failures, timeouts, leasesLost = "leases_lost",
                 outvoted = "results_outvoted", consecutiveValid = "consecutive_valid", errorRate = "error_rate",
                 lastResultAt = "last_result_at"
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var nodes: [Node]
        /// Records read whose signature did not hold (not counted), and records with no signature at all.
        public var unverified: Int
        public var unsigned: Int
        public var workerTrust: String
        public var derivation: [String: String]

        enum CodingKeys: String, CodingKey {
            case nodes, unverified = "records_unverified", unsigned = "records_unsigned", workerTrust = "worker_trust", derivation
        }
    }

    static let derivation: [String: String] = [
        "results_accepted": "folded records (tasks/completed|failed|rejected/<node>-<id>.json.log and archived ones) whose .log.sig is a valid dgrid-result signature by a key this host accepts for the record's node_id; for a quorum task, each vote (tasks/votes/<id>/<n>.json, signed the same way) that agreed with the decision, recomputed from the signed votes and the task's quorum",
        "failures": "accepted records with status failed or skipped, not timed out",
        "timeouts": "accepted records with timed_out true",
        "leases_lost": "entries of previous_attempts, in other nodes' accepted records, naming this node and ending lease_expired",
        "results_outvoted": "signed votes on decided quorum tasks that did not agree with the decision (recomputed: the largest group of verified votes sharing the outcome the task compares, at its agree count); votes of a task with no consensus count neither way",
        "consecutive_valid": "accepted records in a row with status completed, from the newest by finished_at back; an outvoted vote ends the row",
        "error_rate": "(failures + timeouts + leases_lost + results_outvoted) / (results_accepted + leases_lost + results_outvoted)",
    ]

    /// One folded record as this host judges it: read and verified once per blob (and
    /// signature blob) for the process — a worker asks at every pick of gated work.
    struct Entry {
        let record: ResultRecord
        let verdict: Verdict
    }

    enum Verdict { case accepted, unsigned, unverified }

    /// Reads every folded record (main's folders, then each bundle once); `progress` hears how far.
    public func report(progress: (Int, Int) -> Void = { _, _ in }) throws(GridError) -> Report {
        try report(of: try connection.snapshot(), progress: progress)
    }

    /// Each node's figures at `snapshot`'s tip of main, worked out once per tip for the process.
    func figures(_ snapshot: GridSnapshot) throws(GridError) -> [String: Node] {
        guard let tip = snapshot.mainTip else { return [:] }
        return try connection.memoized("reputation-figures", tip) { () throws(GridError) -> [String: Node] in
            Dictionary(uniqueKeysWithValues: try report(of: snapshot).nodes.map { ($0.nodeID, $0) })
        }
    }

    func report(of snapshot: GridSnapshot, progress: (Int, Int) -> Void = { _, _ in }) throws(GridError) -> Report {
        var entries: [Entry] = []
        // The records are `.json.log` entries of the finished folders, read as entries (`MainFiles`): no path per file on main.
        let logSuffix = Array((".json" + LedgerLayout.logSuffix).utf8)
        var records: [(path: String, blob: GitOID)] = []
        for (folder, folderEntries) in snapshot.files.folders {
            for index in 0..<folderEntries.count where folderEntries.withName(index, { $0.count > logSuffix.count && $0.suffix(logSuffix.count).elementsEqual(logSuffix) }) {
                records.append((folder + folderEntries.name(index), folderEntries.id(at: index)))
            }
        }
        for (path, blob) in records {
            guard GridSnapshot.finishedTaskID(String(path.dropLast(LedgerLayout.logSuffix.count))) != nil else { continue }
            let signatureBlob = snapshot.files[path + NodeKey.signatureSuffix]
            let entry = try connection.memoized("reputation-record:" + (signatureBlob?.hex ?? "-"), blob) { () throws(GridError) -> Entry? in
                let bytes = try connection.blob(blob, limit: 4 << 20)
                let signature = try signatureBlob.map { (blob) throws(GridError) in try connection.blob(blob, limit: SSHSignatureLimit.bytes) }
                return ResultRecord.parse(bytes).map { Entry(record: $0, verdict: judge(bytes, signature: signature, nodeID: $0.nodeID)) }
            }
            // A quorum task's canonical record is counted as its vote (below); a no-consensus record is no node's run.
            if let entry, entry.record.replica == nil, entry.record.consensus != false { entries.append(entry) }
        }
        var (agreed, outvoted) = try quorumVotes(snapshot)
        entries += agreed.map { Entry(record: $0, verdict: .accepted) }
        let bundles = snapshot.files.others.keys.filter { ArchiveLayout.isBundlePath($0) }.sorted()
        for (index, bundle) in bundles.enumerated() {
            progress(index, bundles.count)
            guard let blob = snapshot.files[bundle] else { continue }
            let (bundled, bundledOutvoted) = try connection.memoized("reputation-bundle", blob) { () throws(GridError) -> ([Entry], [ResultRecord]) in
                let members: [String: [UInt8]]
                do {
                    members = try ArchiveBundle.read(try connection.blob(blob, limit: GridConnection.bundleLimit)) { _ in true }
                } catch let error as GridError {
                    throw error
                } catch {
                    throw .local("\(bundle) cannot be read (\(error)): its records are not counted; restore it from the history kept under \(GridCompaction.historyPrefix)")
                }
                var entries: [Entry] = members.keys.sorted().filter { $0.hasSuffix(LedgerLayout.logSuffix) }.compactMap { path in
                    let bytes = members[path]!
                    return ResultRecord.parse(bytes).map { Entry(record: $0, verdict: judge(bytes, signature: members[path + NodeKey.signatureSuffix], nodeID: $0.nodeID)) }
                }.filter { $0.record.replica == nil && $0.record.consensus != false }
                // The votes archived with their tasks, recounted as on main.
                var votes: [String: [QuorumTally.Vote]] = [:]
                for (path, bytes) in members {
                    guard let (taskID, replica) = QuorumLayout.vote(atPath: path), let record = ResultRecord.parse(bytes), record.taskID == taskID,
                          record.replica == replica, judge(bytes, signature: members[path + NodeKey.signatureSuffix], nodeID: record.nodeID) == .accepted else { continue }
                    votes[taskID, default: []].append(QuorumTally.Vote(replica: replica, record: record, bytes: bytes, signature: nil, commit: blob))
                }
                let (agreed, outvoted) = Self.recount(votes) { taskID in
                    members.first { GridSnapshot.finishedTaskID($0.key) == taskID }.flatMap {
                        try? TaskParser.parse($0.value, limits: connection.settings.limits).get().quorum
                    }
                }
                entries += agreed.map { Entry(record: $0, verdict: .accepted) }
                return (entries, outvoted)
            }
            entries += bundled
            outvoted += bundledOutvoted
        }
        progress(bundles.count, bundles.count)
        return Self.tally(entries, outvoted: outvoted, trust: trust)
    }

    private func judge(_ bytes: [UInt8], signature: [UInt8]?, nodeID: String) -> Verdict {
        guard signature != nil || trust.mode == .off else { return .unsigned }
        return trust.refusal(of: bytes, signature: signature, nodeID: nodeID) == nil ? .accepted : .unverified
    }

    /// The votes of decided quorum tasks on main, verified, and split by whether they agreed:
    /// recomputed from the signed votes and the task's own `quorum` (never from the fold's tally file).
    private func quorumVotes(_ snapshot: GridSnapshot) throws(GridError) -> (agreed: [ResultRecord], outvoted: [ResultRecord]) {
        var byTask: [String: [QuorumTally.Vote]] = [:]
        for path in snapshot.files.others.keys.sorted() {
            guard let (taskID, replica) = QuorumLayout.vote(atPath: path), let blob = snapshot.files[path] else { continue }
            let signatureBlob = snapshot.files[path + NodeKey.signatureSuffix]
            let vote = try connection.memoized("reputation-vote:" + (signatureBlob?.hex ?? "-"), blob) { () throws(GridError) -> QuorumTally.Vote? in
                let bytes = try connection.blob(blob, limit: QuorumVotes.recordLimit)
                let signature = try signatureBlob.map { (blob) throws(GridError) in try connection.blob(blob, limit: SSHSignatureLimit.bytes) }
                // Only a vote its node signed, for this task and replica, takes part in the recount.
                guard let record = ResultRecord.parse(bytes), record.taskID == taskID, record.replica == replica,
                      judge(bytes, signature: signature, nodeID: record.nodeID) == .accepted else { return nil }
                return QuorumTally.Vote(replica: replica, record: record, bytes: bytes, signature: signature, commit: blob)
            }
            if let vote { byTask[taskID, default: []].append(vote) }
        }
        var quorums: [String: TaskQuorum] = [:]
        for taskID in byTask.keys {
            guard let taskPath = snapshot.finishedPaths(of: taskID).first, let blob = snapshot.files[taskPath] else { continue }
            quorums[taskID] = try connection.memoized("reputation-quorum", blob) { () throws(GridError) -> TaskQuorum? in
                try? TaskParser.parse(try connection.blob(blob, limit: connection.settings.limits.maxFileBytes),
                                      limits: connection.settings.limits).get().quorum
            }
        }
        return Self.recount(byTask) { quorums[$0] }
    }

    /// Each decided quorum task's verified votes split by whether they agreed, recounted from
    /// the votes and the task's own `quorum` (`quorumOf`); undecided and no-consensus tasks count neither way.
    static func recount(_ byTask: [String: [QuorumTally.Vote]], quorumOf: (String) -> TaskQuorum?) -> (agreed: [ResultRecord], outvoted: [ResultRecord]) {
        var agreed: [ResultRecord] = [], outvoted: [ResultRecord] = []
        for (taskID, votes) in byTask.sorted(by: { $0.key < $1.key }) {
            // Votes reach main only when their task was decided: an adaptive task's unanimous votes decided it.
            guard let quorum = quorumOf(taskID),
                  case .decided(_, let agreeing, let dissenting) = QuorumTally(votes: votes, quorum: quorum,
                                                                               proven: Set(votes.map(\.record.nodeID))).verdict else { continue }
            agreed += agreeing.map(\.record)
            outvoted += dissenting.map(\.record)
        }
        return (agreed, outvoted)
    }

    /// `outvoted`: verified votes that lost; they count against their node, in time order with the rest.
    static func tally(_ entries: [Entry], outvoted: [ResultRecord] = [], trust: WorkerTrust) -> Report {
        var nodes: [String: Node] = [:]
        var unverified = 0, unsigned = 0
        var accepted: [(record: ResultRecord, outvoted: Bool)] = outvoted.map { ($0, true) }
        for entry in entries {
            switch entry.verdict {
            case .unsigned: unsigned += 1
            case .unverified: unverified += 1
            case .accepted: accepted.append((entry.record, false))
            }
        }
        // Newest last, by when each finished (ties by task id): the order "in a row" is counted in.
        func when(_ record: ResultRecord) -> (String, String) { (record.finishedAt.isEmpty ? record.timestamp : record.finishedAt, record.taskID) }
        accepted.sort { when($0.record) < when($1.record) }
        for (record, lost) in accepted {
            var node = nodes[record.nodeID] ?? Node(nodeID: record.nodeID)
            if lost {
                node.outvoted += 1
                node.consecutiveValid = 0
                nodes[record.nodeID] = node
                continue
            }
            node.accepted += 1
            let status = record.status
            if record.timedOut { node.timeouts += 1 } else if status == .failed || status == .skipped { node.failures += 1 }
            node.consecutiveValid = status == .completed && !record.timedOut ? node.consecutiveValid + 1 : 0
            node.lastResultAt = record.finishedAt.isEmpty ? record.timestamp : record.finishedAt
            nodes[record.nodeID] = node
            for attempt in record.previousAttempts where attempt.end == .leaseExpired && attempt.nodeID != record.nodeID
            && LedgerLayout.isValidNodeID(attempt.nodeID) {
                var lost = nodes[attempt.nodeID] ?? Node(nodeID: attempt.nodeID)
                lost.leasesLost += 1
                nodes[attempt.nodeID] = lost
            }
        }
        for (id, var node) in nodes {
            let bad = node.failures + node.timeouts + node.leasesLost + node.outvoted, all = node.accepted + node.leasesLost + node.outvoted
            node.errorRate = all == 0 ? 0 : (Double(bad) / Double(all) * 1000).rounded() / 1000
            nodes[id] = node
        }
        return Report(nodes: nodes.values.sorted { $0.nodeID < $1.nodeID }, unverified: unverified, unsigned: unsigned,
                      workerTrust: trust.mode.rawValue, derivation: derivation)
    }
}
