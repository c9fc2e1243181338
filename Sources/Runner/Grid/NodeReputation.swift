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
        /// Results outvoted by a quorum (none until quorum execution lands).
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
        "results_accepted": "folded records (tasks/completed|failed|rejected/<node>-<id>.json.log and archived ones) whose .log.sig is a valid dgrid-result signature by a key this host accepts for the record's node_id",
        "failures": "accepted records with status failed or skipped, not timed out",
        "timeouts": "accepted records with timed_out true",
        "leases_lost": "entries of previous_attempts, in other nodes' accepted records, naming this node and ending lease_expired",
        "results_outvoted": "quorum votes against this node's result (quorum execution is not built yet: 0)",
        "consecutive_valid": "accepted records in a row with status completed, from the newest by finished_at back",
        "error_rate": "(failures + timeouts + leases_lost) / (results_accepted + leases_lost)",
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
            if let record = ResultRecord.parse(bytes) { records.append((record, bytes, signature)) }
            seen += 1
        }
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
        return Self.tally(records, trust: trust)
    }

    static func tally(_ records: [(record: ResultRecord, bytes: [UInt8], signature: [UInt8]?)], trust: WorkerTrust) -> Report {
        var nodes: [String: Node] = [:]
        var unverified = 0, unsigned = 0
        var accepted: [ResultRecord] = []
        for (record, bytes, signature) in records {
            guard signature != nil || trust.mode == .off else { unsigned += 1; continue }
            guard trust.refusal(of: bytes, signature: signature, nodeID: record.nodeID) == nil else { unverified += 1; continue }
            accepted.append(record)
        }
        // Newest last, by when each finished (ties by task id): the order "in a row" is counted in.
        accepted.sort { ($0.finishedAt.isEmpty ? $0.timestamp : $0.finishedAt, $0.taskID) < ($1.finishedAt.isEmpty ? $1.timestamp : $1.finishedAt, $1.taskID) }
        for record in accepted {
            var node = nodes[record.nodeID] ?? Node(nodeID: record.nodeID)
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
            let bad = node.failures + node.timeouts + node.leasesLost, all = node.accepted + node.leasesLost
            node.errorRate = all == 0 ? 0 : (Double(bad) / Double(all) * 1000).rounded() / 1000
            nodes[id] = node
        }
        return Report(nodes: nodes.values.sorted { $0.nodeID < $1.nodeID }, unverified: unverified, unsigned: unsigned,
                      workerTrust: trust.mode.rawValue, derivation: derivation)
    }
}
