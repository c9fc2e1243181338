/// Results are refs too (docs/ARCHITECTURE.md §6): `refs/dgrid/results/<id>` is created
/// once, never moved, so a task has at most one published result however
/// many workers ran it (a lapsed lease, a takeover).
struct GridResults {
    let connection: GridConnection

    static func refName(_ taskID: String) -> String { GridConnection.resultsPrefix + taskID }

    /// Publishes `record` (with the task file beside it) on top of the claim.
    /// false when a result for the task already exists. A refusal that leaves
    /// no result behind (a ref lock held by a fold deleting refs in a local
    /// grid) is not "someone else published": it throws, and the caller retries.
    /// `artifacts`: the Git store's contents (hex → bytes), beside the record at `artifacts/<hex>`.
    /// `beat`: the node's heartbeat, carried in the same push (`NodeHeartbeat.carried`);
    /// `beatLanded` hears whether it moved the node ref.
    func publish(_ record: ResultRecord, taskBytes: [UInt8], claim: GitOID?, artifacts: [(hex: String, bytes: [UInt8])] = [],
                 carrying beat: NodeHeartbeat? = nil, beatLanded: (Bool) -> Void = { _ in }) throws(GridError) -> Bool {
        // A replica's record is its vote, at the replica's own ref (`ReplicaRefs`).
        let name = record.replica.map { ReplicaRefs.vote(record.taskID, replica: $0) } ?? Self.refName(record.taskID)
        let key = try connection.nodeKey()
        let beatName = NodeHeartbeat.refName(connection.settings.nodeID)
        // With other slots' claims and results pushed meanwhile (`GridConnection.pushTogether`);
        // each ref is judged on its own, so a refused beat never holds the result back.
        let pushed = try connection.pushTogether(names: beat == nil ? [name] : [name, beatName]) { (ledger) throws(LedgerError) -> [RefMove] in
            let commit = try ledger.commit(parent: claim, changes: GridConnection.signed("result.json", record.json(), by: key) + [
                LedgerChange(path: "task.json", content: taskBytes),
            ] + artifacts.map { LedgerChange(path: "artifacts/" + $0.hex, content: $0.bytes) },
               message: "\(record.status) \(record.taskID) on \(record.nodeID)")
            return [RefMove(name, from: nil, to: commit)] + (try beat?.carried(key: key, in: ledger).map { [$0] } ?? [])
        }
        if let beat {
            beatLanded(pushed.moves.first { $0.name == beatName }.map { beat.landed($0, pushed.outcomes[$0.name]) } ?? false)
        }
        switch pushed.outcome(name) {
        case .applied:
            if let commit = pushed.moves.first?.new { connection.noteOwnUpdate(name, to: commit) }
            return true
        case .rejected(let reason):
            let existing = try connection.withLedger { (ledger) throws(LedgerError) -> GitOID? in try ledger.remoteRefs(prefix: name)[name] }
            if existing != nil { return false }
            throw .local("publishing \(record.taskID) was refused (\(reason)) but no result is there; retrying")
        }
    }

    /// The record (with its signature, `result.json.sig`) and the task bytes of a result commit; nil when unreadable.
    func read(_ commit: GitOID, maxTaskBytes: Int) throws(GridError) -> (record: ResultRecord, signed: SignedRecord, task: [UInt8])? {
        guard let signed = try connection.signedRecord("result.json", of: commit, limit: 4 << 20),
              let record = ResultRecord.parse(signed.bytes) else { return nil }
        let task = try connection.file("task.json", of: commit, limit: maxTaskBytes + 1) ?? []
        return (record, signed, task)
    }
}
