import Foundation

/// The fold lease (docs/ARCHITECTURE.md §6): `refs/dgrid/fold-lease`, one commit holding
/// `lease.json` (a claim record for the pseudo-task "fold"). A worker folds on
/// its own schedule only while it holds the lease, so the grid sees at most one
/// periodic fold per interval, and a holder that dies loses the lease when it
/// runs out. Correctness never rests on it — main only moves by
/// compare-and-swap — it keeps N workers from folding N times.
struct GridFoldLease {
    let connection: GridConnection
    static let refName = "refs/dgrid/fold-lease"

    /// true when this worker now holds the lease for the next fold interval.
    func acquire(now: Date = Date()) throws(GridError) -> Bool {
        let settings = connection.settings
        return try connection.withLedger { (ledger) throws(LedgerError) -> Bool in
            let current = try ledger.remoteRefs(prefix: Self.refName)[Self.refName]
            var attempt = 1
            if let current {
                try ledger.fetch([Self.refName])
                var holder: ClaimRecord?
                if let blob = try ledger.tree(of: current)["lease.json"] {
                    holder = ClaimRecord.parse(try ledger.blob(blob, limit: 4096))
                }
                if let holder, holder.nodeID != settings.nodeID,
                   let until = ISOTime.parse(holder.leaseUntil), until > now {
                    return false
                }
                attempt = (holder?.attempt ?? 0) + 1
                // Delete and create rather than extend the ref's history: one commit, not one per interval forever.
                guard try ledger.deleteRef(Self.refName, expected: current) == .applied else { return false }
            }
            let lease = ClaimRecord(taskID: "fold", nodeID: settings.nodeID, attempt: attempt,
                                    claimedAt: ISOTime.string(now),
                                    leaseUntil: ISOTime.string(now.addingTimeInterval(settings.foldIntervalSeconds)))
            let commit = try ledger.commit(parent: nil, changes: [LedgerChange(path: "lease.json", content: lease.json())],
                                           message: "fold lease for \(settings.nodeID)")
            return try ledger.createRef(Self.refName, target: commit) == .applied
        }
    }
}
