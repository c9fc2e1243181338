import Foundation

/// A claim this worker holds: the ref's current commit and what it says.
struct HeldClaim: Sendable {
    let taskID: String
    var commit: GitOID
    var record: ClaimRecord
}

/// Claims are refs (docs/ARCHITECTURE.md §6): creating `refs/dgrid/claims/<id>` is exclusive,
/// renewal and takeover are compare-and-swap moves onto the previous claim
/// commit, so exactly one worker holds a task at a time.
struct GridClaims {
    let connection: GridConnection
    var settings: GridSettings { connection.settings }

    static func refName(_ taskID: String) -> String { GridConnection.claimsPrefix + taskID }

    /// The claim record in a claim commit; nil when unreadable (treated as expired).
    func record(at commit: GitOID) throws(GridError) -> ClaimRecord? {
        try connection.memoized("claim", commit) { () throws(GridError) -> ClaimRecord? in
            do throws(GridError) {
                return try connection.file("claim.json", of: commit, limit: 64 * 1024).flatMap(ClaimRecord.parse)
            } catch {
                // Gone from the remote since the listing (renewed, folded): the
                // caller's compare-and-swap on the stale id will simply fail.
                if case .ledger(let failure) = error, failure.kind == .network || failure.kind == .authentication { throw error }
                return nil
            }
        }
    }

    /// Whether a claim still binds: readable and its lease not yet over.
    func isLive(_ commit: GitOID, now: Date) throws(GridError) -> Bool {
        guard let record = try record(at: commit), let until = ISOTime.parse(record.leaseUntil) else { return false }
        return until > now
    }

    /// Tries to take `taskID`: a new claim, or a takeover of `expired` (the
    /// claim commit seen in the snapshot). nil when another worker won.
    func claim(_ taskID: String, takingOver expired: GitOID?, now: Date) throws(GridError) -> HeldClaim? {
        let previous = try expired.flatMap { (commit) throws(GridError) in try record(at: commit) }
        let claimRecord = ClaimRecord(taskID: taskID, nodeID: settings.nodeID, attempt: (previous?.attempt ?? 0) + 1,
                                 claimedAt: ISOTime.string(now),
                                 leaseUntil: ISOTime.string(now.addingTimeInterval(settings.leaseSeconds)), progress: nil)
        let name = Self.refName(taskID)
        let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> (GitOID, RefUpdate) in
            let commit = try ledger.commit(parent: expired, changes: [LedgerChange(path: "claim.json", content: claimRecord.json())],
                                           message: "claim \(taskID) by \(settings.nodeID) (attempt \(claimRecord.attempt))")
            if let expired {
                return (commit, try ledger.updateRef(name, from: expired, to: commit))
            }
            return (commit, try ledger.createRef(name, target: commit))
        }
        guard outcome.1 == .applied else { return nil }
        connection.noteOwnUpdate(name, to: outcome.0)
        return HeldClaim(taskID: taskID, commit: outcome.0, record: claimRecord)
    }

    /// The renewal of `claim` (its lease pushed forward), built in the mirror
    /// and not yet pushed: the heartbeat pushes every renewal and the node
    /// record together. Returns the move and the claim as it will be once applied.
    func renewal(of claim: HeldClaim, now: Date, ledger: GitLedger) throws(LedgerError) -> (RefMove, HeldClaim) {
        var record = claim.record
        record.leaseUntil = ISOTime.string(now.addingTimeInterval(settings.leaseSeconds))
        let commit = try ledger.commit(parent: claim.commit, changes: [LedgerChange(path: "claim.json", content: record.json())],
                                       message: "renew \(claim.taskID) by \(settings.nodeID)")
        return (RefMove(Self.refName(claim.taskID), from: claim.commit, to: commit),
                HeldClaim(taskID: claim.taskID, commit: commit, record: record))
    }

    /// Gives a claim back (SIGTERM before the task ran to the end): deletes the ref if it is still ours.
    func release(_ claim: HeldClaim) throws(GridError) {
        _ = try connection.withLedger { (ledger) throws(LedgerError) in
            try ledger.deleteRef(Self.refName(claim.taskID), expected: claim.commit)
        }
    }
}
