import Foundation

/// `dgrid quota` (docs/ARCHITECTURE.md §9): each principal's use of the grid against
/// its limits in this host's policy, counted from the ledger as workers count it.
public struct GridQuota {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public struct Usage: Sendable, Codable, Equatable {
        public var principal: String
        public var running = 0, queued = 0, startedLastHour = 0
        public var maxConcurrentTasks: Int?, maxTasksPerHour: Int?, maxQueuedTasks: Int?
        /// Whether a task of this principal would wait now, and why.
        public var waiting: String?

        enum CodingKeys: String, CodingKey {
            case principal, running, queued, startedLastHour = "started_last_hour"
            case maxConcurrentTasks = "max_concurrent_tasks", maxTasksPerHour = "max_tasks_per_hour", maxQueuedTasks = "max_queued_tasks"
            case waiting
        }
    }

    public struct Report: Sendable, Codable, Equatable {
        public var running = 0, queued = 0
        public var maxConcurrent: Int?, maxQueue: Int?, maxSubmissionsPerMinute: Int?
        public var principals: [Usage] = []

        enum CodingKeys: String, CodingKey {
            case running, queued, maxConcurrent = "max_concurrent", maxQueue = "max_queue"
            case maxSubmissionsPerMinute = "max_submissions_per_minute", principals
        }
    }

    /// Every principal the policy names or the ledger shows, with its counts.
    public func report(check: TaskSignatureCheck, now: Date = Date()) throws(GridError) -> Report {
        try report(in: try connection.snapshot(), check: check, now: now)
    }

    /// The usage of one listing (the dashboard reads every section from the same one).
    func report(in snapshot: GridSnapshot, check: TaskSignatureCheck, now: Date = Date()) throws(GridError) -> Report {
        guard snapshot.mainTip != nil else { throw .notInitialised(repository: connection.repositoryInUse) }
        let claims = GridClaims(connection: connection)
        try connection.prefetch(Array(snapshot.claims.values))
        var live: Set<String> = []
        for (id, commit) in snapshot.claims where try claims.isLive(commit, now: now) { live.insert(id) }
        let book = try QuotaBook.build(snapshot: snapshot, connection: connection, check: check, live: live, now: now, countAllStarts: true)
        let policy = check.trust.policy
        var report = Report(running: book.runningTotal, queued: book.queuedTotal,
                            maxConcurrent: policy.global.maxConcurrent, maxQueue: policy.global.maxQueue,
                            maxSubmissionsPerMinute: policy.global.maxSubmissionsPerMinute)
        let names = Set(policy.principals.keys).union(book.running.keys).union(book.queued.keys).union(book.startedInWindow.keys)
        for name in names.sorted() {
            let limits = book.limits(name)
            var usage = Usage(principal: name, running: book.running[name]?.count ?? 0, queued: book.queued[name]?.count ?? 0,
                              startedLastHour: book.startedInWindow[name]?.count ?? 0, maxConcurrentTasks: limits.maxConcurrentTasks,
                              maxTasksPerHour: limits.maxTasksPerHour, maxQueuedTasks: limits.maxQueuedTasks)
            usage.waiting = book.deferral(forPrincipal: name)
            report.principals.append(usage)
        }
        return report
    }
}
