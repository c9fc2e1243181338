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

    /// The longest lease a worker takes (two of the longest fold interval, an hour) and ten minutes
    /// of clock skew. Anyone who can push can write the lease: one that claims to run for a year
    /// would stop every worker's scheduled fold, so a lease further ahead than this holds nothing.
    static let longestLease: TimeInterval = 2 * 3_600 + 600

    /// How long a lease runs: two fold intervals, renewed by its holder every interval — as a claim's
    /// lease outlives several heartbeats. A lease that ran one interval lapsed just as its holder
    /// renewed it, and every worker checking on the same beat read it and raced for it: at a
    /// hundred workers about 0.4 Git operations per task (bench/scale.sh). A dead holder's lease is
    /// taken over two intervals after its last fold.
    static func seconds(_ settings: GridSettings) -> TimeInterval { 2 * settings.foldIntervalSeconds }

    /// true when this worker now holds the lease for the next fold interval.
    /// `readingAnUnseenLease`: read a lease commit the first time this process sees it (a draining
    /// worker, which folds now or not at all; the lease may be this node's own, left by its
    /// previous process). Otherwise the first sighting counts as a renewal seen just then: read
    /// only if it is still there two intervals on — at a hundred workers' start, each read the
    /// lease once (bench/scale.sh); a worker restarted while it held the lease folds again two
    /// intervals later, as after any holder's end.
    func acquire(now: Date = Date(), readingAnUnseenLease: Bool = true) throws(GridError) -> Bool {
        let settings = connection.settings
        // The lease as the worker's last listing showed it (taken moments ago, by the poll that
        // found work to fold): a lease someone else holds costs no Git operation to see, and a
        // stale view costs one refused push. Only a worker that never listed lists here.
        let listed = connection.lastSnapshot()
        // Another worker's lease commit, listed for less than a lease: it was written about then
        // (its holder replaces it every interval), so it still holds — no fetch to read it. Every holder replaces the commit at
        // each fold, and at a hundred workers those reads were about one per task (bench/scale.sh).
        if let lease = listed?.foldLease, lease != connection.ownRef(Self.refName),
           let since = connection.leaseFirstSeen(lease, now: now, readingAnUnseenOne: readingAnUnseenLease),
           now.timeIntervalSince(since) < Self.seconds(settings) {
            return false
        }
        return try connection.withLedger { (ledger) throws(LedgerError) -> Bool in
            let current = listed != nil ? listed?.foldLease : try ledger.remoteRefs(prefix: Self.refName)[Self.refName]
            var attempt = 1
            if let current {
                // A ref that names no commit cannot even be fetched (a blob pushed there): it holds nothing.
                var readable = true
                if !ledger.hasObject(current) {
                    do throws(LedgerError) {
                        try ledger.fetch([Self.refName])
                    } catch where error.kind != .network {
                        readable = false
                    }
                    // Not in the mirror even after the fetch: the lease moved between the listing and
                    // the fetch — another worker took it just now.
                    if readable && !ledger.hasObject(current) { return false }
                }
                let holder = readable ? Self.holder(of: current, in: ledger) : nil
                if let holder, holder.nodeID != settings.nodeID, let until = ISOTime.parse(holder.leaseUntil),
                   until > now, until.timeIntervalSince(now) <= Self.longestLease {
                    return false
                }
                attempt = (holder?.attempt ?? 0) + 1
            }
            let lease = ClaimRecord(taskID: "fold", nodeID: settings.nodeID, attempt: attempt,
                                    claimedAt: ISOTime.string(now),
                                    leaseUntil: ISOTime.string(now.addingTimeInterval(Self.seconds(settings))))
            let commit = try ledger.commit(parent: nil, changes: [LedgerChange(path: "lease.json", content: lease.json())],
                                           message: "fold lease for \(settings.nodeID)")
            // Replaced rather than extended (one orphan commit, not one per interval forever), by
            // compare-and-swap on the lease we read: one push, refused when someone took it first.
            let move = RefMove(Self.refName, from: current, to: commit, replacingHistory: true)
            guard try ledger.moveRefs([move])[Self.refName] == .applied else {
                if let taken = ledger.lastPushListing?.refs[Self.refName], taken != current { connection.noteLeaseTaken(taken, now: now) }
                return false
            }
            connection.noteOwnUpdate(Self.refName, to: commit)
            return true
        }
    }

    /// Who holds the lease commit `id`, or nil when nobody readable does: a lease.json that does
    /// not parse, a commit without one, or an object that is no commit at all (a blob pushed to
    /// the ref) hold nothing, and the compare-and-swap replaces them.
    private static func holder(of id: GitOID, in ledger: GitLedger) -> ClaimRecord? {
        guard let files = try? ledger.tree(of: id), let blob = files["lease.json"],
              let bytes = try? ledger.blob(blob, limit: 4096) else { return nil }
        return ClaimRecord.parse(bytes)
    }
}
