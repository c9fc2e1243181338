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

    /// Reads every folded record (main's folders, then each bundle once); `progress` hears how far.
    public func report(progress: (Int, Int) -> Void = { _, _ in }) throws(GridError) -> Report {
        let snapshot = try connection.snapshot()
        var records: [(record: ResultRecord, bytes: [UInt8], signature: [UInt8]?)] = []
        var seen = 0
        for path in snapshot.files.paths.sorted() where path.hasSuffix(".json" + LedgerLayout.logSuffix) {
            guard GridSnapshot.finishedTaskID(String(path.dropLast(LedgerLayout.logSuffix.count))) != nil,
                  let blob = snapshot.files[path] else { continue }
            let bytes = try connection.blob(blob, limit: 4 << 20)
            let signature = try snapshot.files[path + NodeKey.signatureSuffix].map { (blob) throws(GridError) in
                try connection.blob(blob, limit: SSHSignatureLimit.bytes)
            }
            // A quorum task's canonical record is counted as its vote (below); a no-consensus record is no node's run.
            if let record = ResultRecord.parse(bytes), record.replica == nil, record.consensus != false { records.append((record, bytes, signature)) }
            seen += 1
        }
        let (agreed, outvoted) = try quorumVotes(snapshot)
        records += agreed
        let bundles = snapshot.files.others.keys.filter { ArchiveLayout.isBundlePath($0) }.sorted()
        for (index, bundle) in bundles.enumerated() {
            progress(index, bundles.count)
            guard let blob = snapshot.files[bundle] else { continue }
            let members: [String: [UInt8]]
            do {
                members = try ArchiveBundle.read(try connection.blob(blob, limit: GridConnection.bundleLimit)) {
                    $0.hasSuffix(LedgerLayout.logSuffix) || $0.hasSuffix(LedgerLayout.logSuffix + NodeKey.signatureSuffix)
                }
            } catch let error as GridError {
                throw error
            } catch {
                throw .local("\(bundle) cannot be read (\(error)): its records are not counted; restore it from the history kept under \(GridCompaction.historyPrefix)")
            }
            for (path, bytes) in members where path.hasSuffix(LedgerLayout.logSuffix) {
                if let record = ResultRecord.parse(bytes) { records.append((record, bytes, members[path + NodeKey.signatureSuffix])) }
            }
        }
        progress(bundles.count, bundles.count)
        return Self.tally(records, outvoted: outvoted, trust: trust)
    }

    /// The votes of decided quorum tasks on main, verified, and split by whether they agreed:
    /// recomputed from the signed votes and the task's own `quorum` (never from the fold's tally file).
    private func quorumVotes(_ snapshot: GridSnapshot) throws(GridError) -> (agreed: [(record: ResultRecord, bytes: [UInt8], signature: [UInt8]?)],
                                                                           outvoted: [ResultRecord]) {
        var byTask: [String: [QuorumTally.Vote]] = [:]
        for path in snapshot.files.others.keys.sorted() where path.hasPrefix(QuorumLayout.root) && path.hasSuffix(".json") {
            let parts = path.dropFirst(QuorumLayout.root.count).split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let replica = Int(parts[1].dropLast(".json".count)), ReplicaRefs.replicaRange.contains(replica),
                  let blob = snapshot.files[path] else { continue }
            let taskID = String(parts[0])
            let bytes = try connection.blob(blob, limit: QuorumVotes.recordLimit)
            let signature = try snapshot.files[path + NodeKey.signatureSuffix].map { (blob) throws(GridError) in
                try connection.blob(blob, limit: SSHSignatureLimit.bytes)
            }
            // Only a vote its node signed, for this task and replica, takes part in the recount.
            guard let record = ResultRecord.parse(bytes), record.taskID == taskID, record.replica == replica,
                  signature != nil || trust.mode == .off, trust.refusal(of: bytes, signature: signature, nodeID: record.nodeID) == nil else { continue }
            byTask[taskID, default: []].append(QuorumTally.Vote(replica: replica, record: record, bytes: bytes, signature: signature, commit: blob))
        }
        var agreed: [(record: ResultRecord, bytes: [UInt8], signature: [UInt8]?)] = [], outvoted: [ResultRecord] = []
        for (taskID, votes) in byTask.sorted(by: { $0.key < $1.key }) {
            guard let taskPath = snapshot.finishedPaths(of: taskID).first, let blob = snapshot.files[taskPath],
                  let task = try? TaskParser.parse(try connection.blob(blob, limit: connection.settings.limits.maxFileBytes),
                                                   limits: connection.settings.limits).get(),
                  let quorum = task.quorum, case .decided(_, let agreeing, let dissenting) = QuorumTally(votes: votes, quorum: quorum).verdict else { continue }
            agreed += agreeing.map { ($0.record, $0.bytes, $0.signature) }
            outvoted += dissenting.map(\.record)
        }
        return (agreed, outvoted)
    }

    /// `outvoted`: verified votes that lost; they count against their node, in time order with the rest.
    static func tally(_ records: [(record: ResultRecord, bytes: [UInt8], signature: [UInt8]?)], outvoted: [ResultRecord] = [],
                      trust: WorkerTrust) -> Report {
        var nodes: [String: Node] = [:]
        var unverified = 0, unsigned = 0
        var accepted: [(record: ResultRecord, outvoted: Bool)] = outvoted.map { ($0, true) }
        for (record, bytes, signature) in records {
            guard signature != nil || trust.mode == .off else { unsigned += 1; continue }
            guard trust.refusal(of: bytes, signature: signature, nodeID: record.nodeID) == nil else { unverified += 1; continue }
            accepted.append((record, false))
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
