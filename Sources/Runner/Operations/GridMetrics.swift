import Foundation

/// `dgrid metrics` (docs/ARCHITECTURE.md §12): grid-wide figures from the
/// ledger, as `dgrid status` reads it (`GridStatus`, `GridSnapshot`), and the
/// scaling advice an autoscaler reads (`ScalingAdvice`). Keep one instance
/// for a `--watch`: result records are read once per blob (Git ids name
/// content), so each later round reads only what finished since.
public final class GridMetrics {
    let connection: GridConnection
    /// Folded records by their `.log` blob, unfolded ones by their result commit.
    private var samples: [GitOID: FinishedSample] = [:]

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public struct Options: Sendable {
        /// Throughput and observed durations look back this far.
        public var windowSeconds: Double = 900
        /// The queue should drain within this (`ScalingAdvice`).
        public var targetSeconds: Double = 600
        /// A node whose last heartbeat is older than this is offline.
        public var offlineAfterSeconds: Double = 120
        /// When no task finished yet: the duration the advice assumes.
        public var assumedDurationSeconds: Double = 60
        public var minWorkers = 0
        public var maxWorkers: Int?
        public init() {}
    }

    public struct Report: Sendable, Codable, Equatable {
        public var time: String
        public var gridID: String?
        public var queue: Queue
        /// Tasks under a live claim with no result yet.
        public var running: Int
        public var throughput: Throughput
        public var durations: Durations
        public var nodes: Nodes
        /// Each principal's use (verified signers by this host's trust; `(unsigned)` for the rest).
        public var principals: [PrincipalUsage]
        public var scaling: ScalingAdvice

        enum CodingKeys: String, CodingKey {
            case time, gridID = "grid_id", queue, running, throughput, durations, nodes, principals, scaling
        }
    }

    public struct Queue: Sendable, Codable, Equatable {
        /// Queued tasks no live claim holds: what waits for a worker.
        public var waiting = 0
        /// Of those, the ones whose dependencies allow them to run now.
        public var ready = 0
        public var waitingOnDependencies = 0
        /// `waiting` by priority; every priority present, 0 when none.
        public var byPriority: [String: Int] = [:]
        /// Now minus the earliest `created_at` of a waiting task (the submitter's clock: `dgrid submit` sets it).
        public var oldestWaitingSeconds: Double?
        public var oldestTask: String?
        /// Waiting tasks whose file has no readable `created_at` (hand-pushed): not in the age.
        public var withoutCreatedAt = 0

        enum CodingKeys: String, CodingKey {
            case waiting, ready, waitingOnDependencies = "waiting_on_dependencies", byPriority = "by_priority"
            case oldestWaitingSeconds = "oldest_waiting_seconds", oldestTask = "oldest_task", withoutCreatedAt = "without_created_at"
        }
    }

    public struct Throughput: Sendable, Codable, Equatable {
        public var windowSeconds: Double
        /// Results whose `finished_at` is in the window: folded, archived or published and not folded yet.
        public var finished = 0, completed = 0, failed = 0, rejected = 0
        public var perMinute: Double = 0
        public var completedPerMinute: Double = 0

        enum CodingKeys: String, CodingKey {
            case windowSeconds = "window_seconds", finished, completed, failed, rejected
            case perMinute = "per_minute", completedPerMinute = "completed_per_minute"
        }
    }

    public struct Durations: Sendable, Codable, Equatable {
        /// `window` (tasks that ran and finished in the window), `history` (every record on
        /// main, when none did), or `assumed` (no task ran yet: `assumed_duration`).
        public var source: String
        public var samples = 0
        public var meanSeconds: Double
        public var p50Seconds: Double?
        public var p90Seconds: Double?

        enum CodingKeys: String, CodingKey {
            case source, samples, meanSeconds = "mean_seconds", p50Seconds = "p50_seconds", p90Seconds = "p90_seconds"
        }
    }

    public struct Nodes: Sendable, Codable, Equatable {
        public var live = 0, offline = 0
        /// Live nodes that say they are unhealthy (they claim nothing).
        public var unhealthy = 0
        /// Slots of the live, healthy nodes.
        public var liveSlots = 0
        public var records: [NodeState] = []

        enum CodingKeys: String, CodingKey {
            case live, offline, unhealthy, liveSlots = "live_slots", records
        }
    }

    public struct NodeState: Sendable, Codable, Equatable {
        public enum State: String, Sendable, Codable { case live, offline }
        public var nodeID: String
        public var state: State
        public var health: String
        public var reason: String?
        public var slots: Int
        public var lastHeartbeat: String
        /// nil when the heartbeat time does not parse.
        public var heartbeatAgeSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case nodeID = "node_id", state, health, reason, slots, lastHeartbeat = "last_heartbeat", heartbeatAgeSeconds = "heartbeat_age_seconds"
        }

        public var isLiveAndHealthy: Bool { state == .live && health != "unhealthy" }
    }

    public struct PrincipalUsage: Sendable, Codable, Equatable {
        public var principal: String
        public var running: Int, queued: Int, startedLastHour: Int

        enum CodingKeys: String, CodingKey {
            case principal, running, queued, startedLastHour = "started_last_hour"
        }
    }

    /// What one finished task tells the figures.
    struct FinishedSample {
        let finishedAt: Date?
        let status: ResultStatus
        /// How long its sandbox ran; nil when it did not run (rejected, skipped).
        let seconds: Double?
    }

    /// The figures now. `check`: this host's trust, to name principals; nil: no per-principal usage.
    public func report(options: Options = Options(), check: TaskSignatureCheck? = nil, now: Date = Date()) throws(GridError) -> Report {
        let counts = try GridStatus(connection: connection).counts(scanUnknownFields: false)
        let snapshot = try connection.snapshot()
        let live = counts.running.filter { !$0.expired && $0.state == ClaimState.held.rawValue }
        let claimed = Set(live.map(\.taskID))

        var queue = Queue()
        for priority in TaskPriority.allCases { queue.byPriority[priority.rawValue] = 0 }
        var oldest: (Date, String)?
        for location in snapshot.queue where !claimed.contains(location.taskID) {
            queue.waiting += 1
            queue.byPriority[(location.priority ?? .normal).rawValue, default: 0] += 1
            guard let blob = snapshot.files[location.path], let created = ISOTime.parse(try connection.queuedHeader(blob).createdAt) else {
                queue.withoutCreatedAt += 1
                continue
            }
            if oldest.map({ (created, location.taskID) < $0 }) ?? true { oldest = (created, location.taskID) }
        }
        queue.ready = try connection.orderedQueue(of: snapshot).filter { !claimed.contains($0.location.taskID) }.count
        queue.waitingOnDependencies = max(0, queue.waiting - queue.ready)
        if let (created, id) = oldest {
            queue.oldestWaitingSeconds = max(0, now.timeIntervalSince(created))
            queue.oldestTask = id
        }

        let finished = try finishedSamples(snapshot)
        let windowStart = now.addingTimeInterval(-options.windowSeconds)
        var throughput = Throughput(windowSeconds: options.windowSeconds)
        var windowDurations: [Double] = [], allDurations: [Double] = []
        for sample in finished {
            if let seconds = sample.seconds { allDurations.append(seconds) }
            guard let at = sample.finishedAt, at > windowStart, at <= now.addingTimeInterval(60) else { continue }
            throughput.finished += 1
            switch sample.status {
            case .completed: throughput.completed += 1
            case .failed, .skipped: throughput.failed += 1
            case .rejected: throughput.rejected += 1
            }
            if let seconds = sample.seconds { windowDurations.append(seconds) }
        }
        // Archived tasks left main before the window, unless someone archives by the minute: counted all the same.
        for entry in snapshot.index.finishedTaskIDs.archive.allEntries() where snapshot.finishedPaths(of: entry.taskID).isEmpty {
            guard let at = ISOTime.parse(entry.finishedAt), at > windowStart, at <= now.addingTimeInterval(60) else { continue }
            throughput.finished += 1
            switch entry.folderStatus {
            case .completed: throughput.completed += 1
            case .failed, .skipped: throughput.failed += 1
            case .rejected: throughput.rejected += 1
            }
        }
        let minutes = max(options.windowSeconds, 1) / 60
        throughput.perMinute = Double(throughput.finished) / minutes
        throughput.completedPerMinute = Double(throughput.completed) / minutes
        let durations = Self.durations(window: windowDurations, history: allDurations, assumed: options.assumedDurationSeconds)

        var nodes = Nodes()
        var liveSlots: [Int] = [], anySlots: [Int] = []
        for record in counts.nodeRecords {
            let age = ISOTime.parse(record.lastHeartbeat).map { max(0, now.timeIntervalSince($0)) }
            let stopped = ["stopped", "offline"].contains(record.status)
            let state: NodeState.State = !stopped && (age.map { $0 <= options.offlineAfterSeconds } ?? false) ? .live : .offline
            let node = NodeState(nodeID: record.nodeID, state: state, health: record.health, reason: record.reason, slots: record.slots,
                                 lastHeartbeat: record.lastHeartbeat, heartbeatAgeSeconds: age)
            anySlots.append(record.slots)
            if state == .live {
                nodes.live += 1
                liveSlots.append(record.slots)
                if node.isLiveAndHealthy { nodes.liveSlots += max(0, record.slots) } else { nodes.unhealthy += 1 }
            } else {
                nodes.offline += 1
            }
            nodes.records.append(node)
        }
        let slotSource = liveSlots.isEmpty ? anySlots : liveSlots
        let slotsPerWorker = slotSource.isEmpty ? 1 : Double(slotSource.reduce(0, +)) / Double(slotSource.count)

        var principals: [PrincipalUsage] = []
        if let check {
            let usage = try GridQuota(connection: connection).report(check: check, now: now)
            principals = usage.principals.filter { $0.running + $0.queued + $0.startedLastHour > 0 }.map {
                PrincipalUsage(principal: $0.principal, running: $0.running, queued: $0.queued, startedLastHour: $0.startedLastHour)
            }
        }

        let scaling = ScalingAdvice(targetSeconds: options.targetSeconds, waiting: queue.waiting, running: live.count,
                                    meanDurationSeconds: durations.meanSeconds, slotsPerWorker: slotsPerWorker,
                                    workersLive: nodes.records.filter(\.isLiveAndHealthy).count,
                                    minWorkers: options.minWorkers, maxWorkers: options.maxWorkers)
        return Report(time: ISOTime.string(now), gridID: counts.gridID?.description, queue: queue, running: live.count,
                      throughput: throughput, durations: durations, nodes: nodes, principals: principals, scaling: scaling)
    }

    /// The window's durations when any task ran in it, else every record's, else the assumption.
    static func durations(window: [Double], history: [Double], assumed: Double) -> Durations {
        let (source, values) = !window.isEmpty ? ("window", window) : !history.isEmpty ? ("history", history) : ("assumed", [])
        guard !values.isEmpty else { return Durations(source: source, samples: 0, meanSeconds: assumed) }
        let sorted = values.sorted()
        func rank(_ p: Double) -> Double { sorted[max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)] }
        return Durations(source: source, samples: sorted.count, meanSeconds: sorted.reduce(0, +) / Double(sorted.count),
                         p50Seconds: rank(0.5), p90Seconds: rank(0.9))
    }

    /// Every result record on main and every one published but not folded, each read once per process.
    private func finishedSamples(_ snapshot: GridSnapshot) throws(GridError) -> [FinishedSample] {
        var out: [FinishedSample] = []
        for (taskID, paths) in snapshot.index.finishedPathsByTask {
            guard let blob = snapshot.deciding(paths).record else { continue }
            if let known = samples[blob] {
                out.append(known)
                continue
            }
            let record = (try? connection.blob(blob, limit: 4 << 20)).flatMap(ResultRecord.parse).flatMap { $0.taskID == taskID ? $0 : nil }
            let sample = Self.sample(record, folder: snapshot.finishedStatus(of: taskID) ?? .failed)
            samples[blob] = sample
            out.append(sample)
        }
        let unfolded = snapshot.results.filter { !snapshot.finishedTaskIDs.contains($0.key) && samples[$0.value] == nil }
        try connection.prefetch(Array(unfolded.values))
        for (taskID, commit) in snapshot.results where !snapshot.finishedTaskIDs.contains(taskID) {
            if let known = samples[commit] {
                out.append(known)
                continue
            }
            guard let bytes = try? connection.file("result.json", of: commit, limit: 4 << 20),
                  let record = ResultRecord.parse(bytes), record.taskID == taskID else { continue }
            let sample = Self.sample(record, folder: record.status)
            samples[commit] = sample
            out.append(sample)
        }
        return out
    }

    /// A record's finish time, status and — when its sandbox ran — duration.
    static func sample(_ record: ResultRecord?, folder: ResultStatus) -> FinishedSample {
        guard let record else { return FinishedSample(finishedAt: nil, status: folder, seconds: nil) }
        let ran = record.imageDigest != nil && (record.status == .completed || record.status == .failed)
        return FinishedSample(finishedAt: ISOTime.parse(record.finishedAt), status: record.status,
                              seconds: ran ? Double(max(0, record.durationMs)) / 1000 : nil)
    }
}
