import Foundation

/// The node's own record (`refs/dgrid/nodes/<id>`, folded into
/// `nodes/<id>.json` for D-GRID's dashboard), replaced on every beat: each
/// beat is an orphan commit (no parent) that replaces the last one by
/// compare-and-swap, so the ref's history is one commit however long the
/// node lives (docs/ARCHITECTURE.md §6). Chaining beats kept ≈2,900 commits a
/// day per node reachable forever.
struct NodeHeartbeat {
    let connection: GridConnection
    /// What the record says about this node's health (docs/ARCHITECTURE.md §7).
    var health: NodeHealth = .healthy

    /// What a beat did to the claims it renewed: the renewed claim, or nil
    /// when it was taken over (our lease had lapsed). A claim missing from the
    /// map could not be judged this time (the push failed).
    typealias Renewals = [String: HeldClaim?]

    /// Moves the node record forward and renews `claims` in the same push: a
    /// busy worker's heartbeat costs one round trip, however many slots it has.
    @discardableResult
    func beat(status: String, renewing claims: [HeldClaim] = [], now: Date = Date()) throws(GridError) -> Renewals {
        let settings = connection.settings
        let key = try connection.nodeKey()
        let record = record(status: status, now: now, key: key)
        let name = Self.refName(settings.nodeID)
        let grid = GridClaims(connection: connection)
        var renewals: Renewals = [:]
        var pending = claims
        // The node ref as we last moved it, or as the last listing showed it (a worker's start lists
        // before its first beat); listed only when unknown or when someone else moved it.
        var current = connection.ownRef(name)
        var listed = false
        if current == nil, let snapshot = connection.lastSnapshot() {
            current = snapshot.nodes[settings.nodeID]
            listed = true
        }
        for _ in 0..<3 {
            // Its own ledger, not the slots': a slot's slow fetch or claim must not
            // make a running task's lease lapse (GridConnection).
            let outcome = try connection.withHeartbeatLedger { (ledger) throws(LedgerError) -> (GitOID, [String: RefUpdate], [String: HeldClaim]) in
                if current == nil && !listed {
                    current = try ledger.remoteRefs(prefix: name)[name]
                    listed = true
                }
                let commit = try ledger.commit(parent: nil, changes: GridConnection.signed("node.json", record.json(), by: key),
                                               message: "heartbeat \(settings.nodeID)")
                var moves = [RefMove(name, from: current, to: commit, replacingHistory: true)]
                var renewed: [String: HeldClaim] = [:]
                for claim in pending {
                    let (move, next) = try grid.renewal(of: claim, now: now, key: key, ledger: ledger)
                    moves.append(move)
                    renewed[move.name] = next
                }
                return (commit, try ledger.moveRefs(moves), renewed)
            }
            let (commit, outcomes, renewed) = outcome
            for (ref, next) in renewed {
                if outcomes[ref] == .applied {
                    connection.noteOwnUpdate(ref, to: next.commit)
                    renewals[next.taskID] = .some(next)
                } else {
                    renewals[next.taskID] = .some(nil)
                }
            }
            pending = []
            if outcomes[name] == .applied {
                connection.noteOwnUpdate(name, to: commit)
                return renewals
            }
            // Someone else moved our node ref (a restarted worker with the same id): list it and beat on top.
            current = nil
            listed = false
        }
        return renewals
    }

    /// The beat a result push carries along (`GridResults.publish`): a busy worker's heartbeats
    /// then cost no push of their own — at a hundred workers they were about 0.3 Git requests per
    /// task (bench/scale.sh). The node ref's move, built in that push's ledger; nil when this
    /// process has not moved or seen its node ref yet (the heartbeat thread's own beat lists it).
    /// Renews no claim: the caller carries one only when it holds no other.
    func carried(status: String = "active", now: Date = Date(), key: NodeKey, in ledger: GitLedger) throws(LedgerError) -> RefMove? {
        let name = Self.refName(connection.settings.nodeID)
        guard let current = connection.ownRef(name) else { return nil }
        let commit = try ledger.commit(parent: nil, changes: GridConnection.signed("node.json", record(status: status, now: now, key: key).json(), by: key),
                                       message: "heartbeat \(connection.settings.nodeID)")
        return RefMove(name, from: current, to: commit, replacingHistory: true)
    }

    /// Notes a carried beat the push applied; whether it did. A refused one changes nothing:
    /// the heartbeat thread beats at its time and lists the ref first.
    func landed(_ beat: RefMove, _ outcome: RefUpdate?) -> Bool {
        guard outcome == .applied, let commit = beat.new else { return false }
        connection.noteOwnUpdate(beat.name, to: commit)
        return true
    }

    static func refName(_ nodeID: String) -> String { GridConnection.nodesPrefix + nodeID }

    private func record(status: String, now: Date, key: NodeKey) -> NodeRecord {
        let settings = connection.settings
        return NodeRecord(nodeID: settings.nodeID, nodeName: Self.hostName(), cpuCount: ProcessInfo.processInfo.activeProcessorCount,
                          memoryGB: (Double(ProcessInfo.processInfo.physicalMemory) / 1e9 * 10).rounded() / 10,
                          diskGB: 0, lastHeartbeat: ISOTime.string(now), status: status, slots: settings.slots,
                          workerVersion: RunnerInfo.workerVersion, health: health,
                          gitCircuit: connection.circuit.snapshot().state.rawValue, heartbeatSeconds: settings.heartbeatSeconds,
                          publicKey: key.publicLine, keyFingerprint: key.publicKey.fingerprint)
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
