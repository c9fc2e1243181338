import Trust
import Foundation

/// A claim this worker holds: the ref's current commit and what it says.
struct HeldClaim: Sendable {
    let taskID: String
    var commit: GitOID
    var record: ClaimRecord

    /// The claim's ref: the task's, or its replica's (`ReplicaRefs`).
    var refName: String { GridClaims.refName(taskID, replica: record.replica) }
}

/// Claims are refs (docs/ARCHITECTURE.md §6): creating `refs/dgrid/claims/<id>` is
/// exclusive; renewal, takeover and release replace its one commit by
/// compare-and-swap on the commit read, so exactly one worker holds a task at a
/// time. Every claim commit is an orphan: a lease renewed every heartbeat for a
/// week is still one commit, and what must survive a takeover (the attempt
/// number, how earlier attempts ended) is in `claim.json`.
struct GridClaims {
    let connection: GridConnection
    var settings: GridSettings { connection.settings }

    static func refName(_ taskID: String) -> String { GridConnection.claimsPrefix + taskID }

    static func refName(_ taskID: String, replica: Int?) -> String {
        replica.map { ReplicaRefs.claim(taskID, replica: $0) } ?? refName(taskID)
    }

    /// The claim record in a claim commit; nil when unreadable (treated as expired).
    func record(at commit: GitOID) throws(GridError) -> ClaimRecord? {
        try read(commit)?.record
    }

    /// The claim's signature file, if any (for its trust anchor: `WorkerTrust.anchor`).
    func signature(at commit: GitOID) throws(GridError) -> [UInt8]? {
        try read(commit)?.signed.signature
    }

    /// The claim record and the bytes it was parsed from, with their signature: one read of the
    /// commit per process, for the record (`record(at:)`) and the verdict on it (`refusal(at:)`) alike.
    private func read(_ commit: GitOID) throws(GridError) -> (record: ClaimRecord, signed: SignedRecord)? {
        try connection.memoized("claim", commit) { () throws(GridError) -> (record: ClaimRecord, signed: SignedRecord)? in
            do throws(GridError) {
                guard let signed = try connection.signedRecord("claim.json", of: commit, limit: ClaimRecord.readLimit),
                      let record = ClaimRecord.parse(signed.bytes) else { return nil }
                return (record, signed)
            } catch {
                // Gone from the remote since the listing (renewed, folded): the
                // caller's compare-and-swap on the stale id will simply fail.
                if case .ledger(let failure) = error, failure.kind == .network || failure.kind == .authentication { throw error }
                return nil
            }
        }
    }

    /// Whether a claim still binds: readable, held, its lease not yet over, and — for a
    /// worker — signed by a key its host accepts for the node it names (`WorkerTrust`):
    /// a claim pushed in another node's name holds nobody's task.
    func isLive(_ commit: GitOID, now: Date) throws(GridError) -> Bool {
        guard let record = try record(at: commit), record.state == .held,
              let until = ISOTime.parse(record.leaseUntil), until > now else { return false }
        return try isSignedByItsNode(commit, record: record)
    }

    /// Whether the claim commit's `claim.json.sig` holds for the node its record names, under
    /// the connection's worker trust (true when none is set).
    func isSignedByItsNode(_ commit: GitOID, record: ClaimRecord) throws(GridError) -> Bool {
        guard let trust = connection.workerTrust else { return true }
        return try refusal(at: commit, record: record, trust: trust) == nil
    }

    /// Why the claim at `commit` (whose record is `record`) is not its node's word under `trust`;
    /// nil when it is. One verdict per commit for the process: pickers and the fold ask again and again,
    /// and a process holds one worker trust.
    func refusal(at commit: GitOID, record: ClaimRecord, trust: WorkerTrust) throws(GridError) -> WorkerTrust.Refusal? {
        guard trust.mode != .off else { return nil }
        return try connection.memoized("claim-verdict", commit) { () throws(GridError) -> WorkerTrust.Refusal? in
            guard let signed = try read(commit)?.signed else { return WorkerTrust.Refusal(reason: "the claim cannot be read", fingerprint: nil) }
            return trust.refusal(of: signed, nodeID: record.nodeID)
        }
    }

    /// Tries to take `taskID` (its run `replica` for a quorum task): a new claim, or a takeover of `expired` (the
    /// claim commit seen in the snapshot, lapsed or released). nil when another worker won.
    func claim(_ taskID: String, replica: Int? = nil, takingOver expired: GitOID?, now: Date) throws(GridError) -> HeldClaim? {
        // A record of another task (or replica) under this name is a writer's, not a history to keep; nor
        // is one its node did not sign (a forged attempt count would end the task for nothing).
        var previous = try expired.flatMap { (commit) throws(GridError) in try record(at: commit) }.flatMap {
            $0.taskID == taskID && $0.replica == replica ? $0 : nil
        }
        if let expired, let read = previous, !(try isSignedByItsNode(expired, record: read)) { previous = nil }
        var claimRecord = ClaimRecord(taskID: taskID, nodeID: settings.nodeID, attempt: (previous?.attempt ?? 0) + 1,
                                      claimedAt: ISOTime.string(now),
                                      leaseUntil: ISOTime.string(now.addingTimeInterval(settings.leaseSeconds)),
                                      previousAttempts: previous?.historyForTakeover ?? [])
        claimRecord.replica = replica
        let name = Self.refName(taskID, replica: replica)
        let key = try connection.nodeKey()
        // The push's own listing (`PushListing`) is kept by the connection: the picker's check after the claim reads it.
        // With other slots' claims and results pushed meanwhile (`GridConnection.pushTogether`).
        let claiming = claimRecord
        let pushed = try connection.pushTogether(names: [name]) { (ledger) throws(LedgerError) -> [RefMove] in
            let commit = try ledger.commit(parent: nil, changes: GridConnection.signed("claim.json", claiming.json(), by: key),
                                           message: "claim \(taskID)\(replica.map { " replica \($0)" } ?? "") by \(settings.nodeID) (attempt \(claiming.attempt))")
            // Created, or replacing the expired claim by compare-and-swap.
            return [RefMove(name, from: expired, to: commit, replacingHistory: true)]
        }
        guard pushed.outcome(name) == .applied, let commit = pushed.moves.first?.new else { return nil }
        connection.noteOwnUpdate(name, to: commit)
        return HeldClaim(taskID: taskID, commit: commit, record: claimRecord)
    }

    /// The renewal of `claim` (its lease pushed forward), built in the mirror
    /// and not yet pushed: the heartbeat pushes every renewal and the node
    /// record together. Returns the move and the claim as it will be once applied.
    func renewal(of claim: HeldClaim, now: Date, key: NodeKey, ledger: GitLedger) throws(LedgerError) -> (RefMove, HeldClaim) {
        var record = claim.record
        record.leaseUntil = ISOTime.string(now.addingTimeInterval(settings.leaseSeconds))
        let commit = try ledger.commit(parent: nil, changes: GridConnection.signed("claim.json", record.json(), by: key),
                                       message: "renew \(claim.taskID) by \(settings.nodeID)")
        return (RefMove(claim.refName, from: claim.commit, to: commit, replacingHistory: true),
                HeldClaim(taskID: claim.taskID, commit: commit, record: record))
    }

    /// Gives a claim back before its task ran to the end (a host fault, or the
    /// worker stopping): the ref moves to a released record that carries this
    /// attempt's end, so the task is runnable at once and its history survives.
    /// The heartbeat may have renewed the claim meanwhile: a ref that moved to a
    /// commit of ours for the same attempt is released from there. false when
    /// the claim is no longer ours (taken over, or folded).
    @discardableResult
    func release(_ claim: HeldClaim, ending end: AttemptEnd, reason: String, now: Date = Date()) throws(GridError) -> Bool {
        var record = claim.record
        record.state = .released
        record.leaseUntil = ISOTime.string(now)
        record.previousAttempts = ClaimRecord.appending(claim.record.ended(end, at: ISOTime.string(now), reason: reason),
                                                        to: claim.record.previousAttempts)
        let name = claim.refName
        let key = try connection.nodeKey()
        var expected = claim.commit
        for _ in 0..<3 {
            let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> (GitOID, RefUpdate, GitOID?) in
                let commit = try ledger.commit(parent: nil, changes: GridConnection.signed("claim.json", record.json(), by: key),
                                               message: "release \(claim.taskID) by \(settings.nodeID): \(end.rawValue)")
                let update = try ledger.replaceRef(name, from: expected, to: commit)
                guard update != .applied, let current = try ledger.remoteRefs(prefix: name)[name] else { return (commit, update, nil) }
                // Ours still, renewed since we read it? Then release from there.
                return (commit, update, try ownRenewal(current, of: claim, ledger: ledger) ? current : nil)
            }
            if outcome.1 == .applied {
                connection.noteOwnUpdate(name, to: outcome.0)
                return true
            }
            guard let renewed = outcome.2 else { return false }
            expected = renewed
        }
        return false
    }

    /// Whether `commit` holds `claim`'s own attempt, still held by this node.
    private func ownRenewal(_ commit: GitOID, of claim: HeldClaim, ledger: GitLedger) throws(LedgerError) -> Bool {
        var files: [String: GitOID]
        do {
            files = try ledger.tree(of: commit)
        } catch {
            try ledger.fetch([claim.refName], keepRefs: false)
            files = try ledger.tree(of: commit)
        }
        guard let blob = files["claim.json"],
              let current = ClaimRecord.parse(try ledger.blob(blob, limit: ClaimRecord.readLimit)) else { return false }
        return current.taskID == claim.taskID && current.replica == claim.record.replica && current.nodeID == claim.record.nodeID
            && current.attempt == claim.record.attempt && current.state == .held
    }

    /// Drops a claim on a task that turned out to be finished: deletes the ref if it is still ours.
    func withdraw(_ claim: HeldClaim) throws(GridError) {
        _ = try connection.withLedger { (ledger) throws(LedgerError) in
            try ledger.deleteRef(claim.refName, expected: claim.commit)
        }
    }
}
