import Foundation
import Trust

/// The counted limits of `policy.toml` (docs/ARCHITECTURE.md §9), read from one
/// listing of the grid so every worker reaches the same answer: what each
/// principal has queued, running and started in the trailing hour. A task's
/// principal is the first trusted signer of its `.sig`, verified here (memoized
/// per task and signature blob), never a field a writer could type.
///
/// Over a rate or concurrency limit a task waits (`deferral`); past a queue
/// limit the newest tasks are refused (`refusal`). Workers race: a worker
/// re-counts after its claim lands (`overAfterClaim`) and withdraws when the
/// claim put the principal over. Two racing claims cannot both miss each other
/// (each worker pushes its claim, then lists), so concurrency and hourly counts
/// are not exceeded; both may withdraw, and the task waits one more poll.
struct QuotaBook {
    /// Where unsigned tasks are counted, on hosts that let them run: `[principal_defaults]` applies.
    static let unsignedBucket = "(unsigned)"
    static let window: TimeInterval = 3600

    let policy: TrustPolicy
    /// Task id → principal (or `unsignedBucket`), for tasks not finished and
    /// for those started within the window. Tasks whose signatures do not hold are absent.
    private(set) var principalOf: [String: String] = [:]
    /// Principal → its tasks with a live claim and no result.
    private(set) var running: [String: Set<String>] = [:]
    /// Principal → its tasks first claimed within the trailing hour (only where an hourly limit applies).
    private(set) var startedInWindow: [String: Set<String>] = [:]
    /// Principal → its queued tasks with no claim, oldest first.
    private(set) var queued: [String: [String]] = [:]
    /// Queued tasks with no claim, whoever signed them: what `max_queue` counts.
    private(set) var queuedTotal = 0
    private(set) var refusals: [String: AdmissionRefusal] = [:]
    /// The claims and which of them were live when counted.
    private let claimsSeen: [String: GitOID]
    /// The tasks the listing the book was built from shows finished.
    private var finishedSeen: FinishedTasks = .none
    private let live: Set<String>

    var runningTotal: Int { running.values.reduce(0) { $0 + $1.count } }

    /// The principal a bucket counts for: nil for unsigned tasks (`[principal_defaults]`).
    static func principal(ofBucket bucket: String) -> String? {
        bucket == unsignedBucket ? nil : bucket
    }

    /// Counts `snapshot`. `live`: ids of tasks whose claim binds now (the picker's lease check).
    /// `countAllStarts`: count the trailing hour for every principal, not only those with an hourly limit (`dgrid quota`).
    static func build(snapshot: GridSnapshot, connection: GridConnection, check: TaskSignatureCheck, live: Set<String>,
                      now: Date = Date(), countAllStarts: Bool = false) throws(GridError) -> QuotaBook {
        var book = QuotaBook(policy: check.trust.policy, claimsSeen: snapshot.claims, live: live)
        let finished = snapshot.finishedTaskIDs
        book.finishedSeen = finished
        // Unfinished tasks, queued or in progress: whose each is.
        var order: [(createdAt: String, taskID: String)] = []
        for location in TaskPicker.claimable(snapshot) where !finished.contains(location.taskID) {
            let id = location.taskID
            let bucket = try book.principal(of: location.path, in: snapshot, connection: connection, check: check)
            book.principalOf[id] = bucket
            // A published result not folded yet: no longer running, still started within the window.
            if snapshot.results[id] != nil { continue }
            if live.contains(id) {
                if let bucket { book.running[bucket, default: []].insert(id) }
            } else if snapshot.claims[id] == nil, location.path.hasPrefix(LedgerLayout.queueRoot), let blob = snapshot.files[location.path] {
                // Every waiting file counts toward the grid's queue, signed by a trusted key or not.
                order.append((try connection.queuedHeader(blob).createdAt, id))
            }
        }
        book.queuedTotal = order.count
        // The queue in submission order ("" — unknown — last), so the newest are the ones past a limit.
        order.sort { ($0.createdAt.isEmpty ? "~" : $0.createdAt, $0.taskID) < ($1.createdAt.isEmpty ? "~" : $1.createdAt, $1.taskID) }
        for (rank, entry) in order.enumerated() {
            if let maximum = book.policy.global.maxQueue, rank >= maximum {
                book.refusals[entry.taskID] = .gridQueueFull(queued: order.count, maximum: maximum)
            }
            if let bucket = book.principalOf[entry.taskID] { book.queued[bucket, default: []].append(entry.taskID) }
        }
        for (bucket, ids) in book.queued {
            guard let maximum = book.limits(bucket).maxQueuedTasks, ids.count > maximum else { continue }
            for id in ids[maximum...] where book.refusals[id] == nil {
                book.refusals[id] = .queueFull(who: AdmissionRefusal.who(principal(ofBucket: bucket)), queued: ids.count, maximum: maximum)
            }
        }
        try book.countStarts(snapshot: snapshot, connection: connection, check: check, now: now, all: countAllStarts)
        return book
    }

    func limits(_ bucket: String) -> PrincipalLimits {
        policy.limits(for: Self.principal(ofBucket: bucket))
    }

    /// Why `taskID` must wait now; nil when it may be claimed.
    func deferral(for taskID: String) -> String? {
        if let maximum = policy.global.maxConcurrent, runningTotal >= maximum {
            return "the grid runs \(runningTotal) tasks, at most \(maximum) at once (max_concurrent)"
        }
        return principalOf[taskID].flatMap(deferral(forPrincipal:))
    }

    /// Why a task of `bucket` must wait now, its principal's limits alone.
    func deferral(forPrincipal bucket: String) -> String? {
        Self.over(limits(bucket), bucket: bucket, running: running[bucket]?.count ?? 0, started: startedInWindow[bucket]?.count ?? 0)
    }

    func refusal(for taskID: String) -> AdmissionRefusal? { refusals[taskID] }

    /// After our claim on `taskID` landed, counted again from `fresh` (listed
    /// after it): the reason to withdraw when the claim put its principal or
    /// the grid over a limit; nil when it may run. A claim this book did not
    /// see live, or that moved since, counts as live: new claims are what race.
    func overAfterClaim(_ taskID: String, fresh: GridSnapshot) -> String? {
        var runningNow: Set<String> = [], startedNow = startedInWindow
        for (id, commit) in fresh.claims where fresh.results[id] == nil && !fresh.finishedTaskIDs.contains(id) {
            let moved = claimsSeen[id] != commit
            guard live.contains(id) || moved || id == taskID else { continue }
            runningNow.insert(id)
            if moved, let bucket = principalOf[id] { startedNow[bucket, default: []].insert(id) }
        }
        if let maximum = policy.global.maxConcurrent, runningNow.count > maximum {
            return "the grid would run \(runningNow.count) tasks, at most \(maximum) at once (max_concurrent)"
        }
        guard let bucket = principalOf[taskID] else { return nil }
        // A task of the principal's that started and finished between the two listings (claimed
        // after the first, folded before the second) shows in neither's claims: count it too.
        for (id, owner) in principalOf where owner == bucket && !finishedSeen.contains(id) && fresh.finishedTaskIDs.contains(id) {
            startedNow[bucket, default: []].insert(id)
        }
        let mine = runningNow.filter { principalOf[$0] == bucket }.count
        return Self.over(limits(bucket), bucket: bucket, running: mine - 1, started: (startedNow[bucket]?.count ?? 1) - 1)
    }

    /// Why one more task of `bucket` is over its limits, with `running` and `started` counted before it.
    private static func over(_ limits: PrincipalLimits, bucket: String, running: Int, started: Int) -> String? {
        let who = AdmissionRefusal.who(principal(ofBucket: bucket))
        if let maximum = limits.maxConcurrentTasks, running + 1 > maximum {
            return "\(who) runs \(running) tasks, at most \(maximum) at once (max_concurrent_tasks)"
        }
        if let maximum = limits.maxTasksPerHour, started + 1 > maximum {
            return "\(who) started \(started) tasks in the last hour, at most \(maximum) (max_tasks_per_hour)"
        }
        return nil
    }

    private func principal(of path: String, in snapshot: GridSnapshot, connection: GridConnection,
                           check: TaskSignatureCheck) throws(GridError) -> String? {
        switch try connection.signing(ofTaskAt: path, in: snapshot, check: check) {
        case .unsigned: return snapshot.files[path] != nil && check.allowUnsigned ? Self.unsignedBucket : nil
        case .untrusted: return nil
        case .principal(let principal): return principal
        }
    }

    /// Tasks first claimed within the window, for principals with an hourly
    /// limit: from the claim records of unfolded tasks and the result records
    /// of folded ones (each read once per blob).
    private mutating func countStarts(snapshot: GridSnapshot, connection: GridConnection, check: TaskSignatureCheck,
                                      now: Date, all: Bool) throws(GridError) {
        let policy = self.policy
        let hourly = { (bucket: String) in all || policy.limits(for: Self.principal(ofBucket: bucket)).maxTasksPerHour != nil }
        guard all || policy.principalDefaults.maxTasksPerHour != nil || policy.principals.values.contains(where: { $0.maxTasksPerHour != nil }) else { return }
        let since = now.addingTimeInterval(-Self.window)
        let counted = snapshot.claims.filter { id, _ in principalOf[id].map(hourly) ?? false }
        try connection.prefetch(Array(counted.values))
        let claims = GridClaims(connection: connection)
        for (id, commit) in counted {
            guard let bucket = principalOf[id] else { continue }
            guard let record = try claims.record(at: commit) else {
                // Gone since the listing: folded (its result on a main newer than ours) or renewed —
                // it ran, recently. Uncounted, a worker could start one more than the limit.
                startedInWindow[bucket, default: []].insert(id)
                continue
            }
            let first = record.previousAttempts.first?.claimedAt ?? record.claimedAt
            // A claim whose time cannot be read counts: a limit errs towards waiting.
            if (ISOTime.parse(first).map { $0 >= since } ?? true) { startedInWindow[bucket, default: []].insert(id) }
        }
        // Folded tasks, from main's index (classified once per tip), not a walk of every path per pick.
        for (taskID, paths) in snapshot.index.finishedPathsByTask {
            guard let path = paths.first(where: { GridSnapshot.nodeAndTask($0, under: GridSnapshot.finishedDirectories) != nil }),
                  let logBlob = snapshot.files[LedgerLayout.logPath(for: path)] else { continue }
            let started = try connection.memoized("started", logBlob) { () throws(GridError) -> Date? in
                (try? connection.blob(logBlob, limit: 4 << 20)).flatMap(ResultRecord.parse).flatMap { ISOTime.parse($0.startedAt) }
            }
            guard let started, started >= since,
                  let bucket = try principal(of: path, in: snapshot, connection: connection, check: check), hourly(bucket) else { continue }
            principalOf[taskID] = bucket
            startedInWindow[bucket, default: []].insert(taskID)
        }
    }
}
