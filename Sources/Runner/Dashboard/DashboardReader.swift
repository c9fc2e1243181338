import Foundation

/// Reads everything the dashboard shows from one listing of the grid
/// (docs/ARCHITECTURE.md §12), with the code the other read-only verbs use —
/// `GridStatus` (counts, claims, nodes), `ResultListing` (finished tasks),
/// `GridDAG` (the graph), `GridQuota` (use against limits) — so every number
/// on the page is the one those verbs print for the same tip. Nothing is
/// written to the grid.
public struct DashboardReader {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    /// This host's trust, to name principals and count quotas as its workers would.
    public enum Trust: Sendable {
        /// `allowUnsigned`: as a worker started with `--allow-unsigned`.
        case host(HostTrust, allowUnsigned: Bool)
        /// The trust files could not be read (why): principals show unverified, quotas are left out.
        case unavailable(String)
    }

    /// `audit`: this host's recent events, newest first (`AuditLog.recent`); nil leaves the section out.
    public func read(trust: Trust, audit: [AuditEvent]?, limits: DashboardLimits = .standard, now: Date = Date()) throws(GridError) -> Dashboard {
        let snapshot = try connection.snapshot()
        guard snapshot.mainTip != nil else { throw .notInitialised(repository: connection.repositoryInUse) }
        var check: TaskSignatureCheck?
        var quotas = Dashboard.QuotaView.unavailable("")
        switch trust {
        case .unavailable(let why):
            quotas = .unavailable(why)
        case .host(let host, let allowUnsigned):
            let pin = PolicySerialPin(path: try connection.settings.policySerialPinPath())
            let (effective, _) = try connection.fleetTrust(host, in: snapshot, pin: pin)
            let signatures = TaskSignatureCheck(trust: effective, allowUnsigned: allowUnsigned, defaultImage: connection.settings.defaultImage)
            check = signatures
            quotas = .report(try GridQuota(connection: connection).report(in: snapshot, check: signatures, now: now))
        }
        let counts = try GridStatus(connection: connection).counts(in: snapshot, trust: check, scanUnknownFields: false, now: now)

        var numbers = DashboardNumbers()
        numbers.generatedAt = ISOTime.string(now)
        numbers.gridID = counts.gridID?.description
        numbers.main = counts.mainTip
        numbers.queued = counts.queued
        numbers.queuedByPriority = counts.queuedByPriority
        for claim in counts.running {
            if claim.state == ClaimState.released.rawValue { numbers.released += 1 } else if claim.expired { numbers.leaseLapsed += 1 } else { numbers.running += 1 }
        }
        numbers.inProgress = counts.inProgress
        numbers.completed = counts.completed + counts.archived[ResultStatus.completed.rawValue, default: 0]
        numbers.failed = counts.failed + counts.archived[ResultStatus.failed.rawValue, default: 0]
        numbers.rejected = counts.rejected + counts.archived[ResultStatus.rejected.rawValue, default: 0]
        numbers.archived = counts.archived.values.reduce(0, +)
        numbers.unfoldedResults = counts.results
        numbers.unplaceable = counts.unplaceable
        numbers.setAside = counts.setAside

        // The queue in claim order, as a worker walks it; a task with a claim is taken already.
        let claimable = try connection.orderedQueue(of: snapshot).filter { snapshot.claims[$0.taskID] == nil }
        numbers.claimable = claimable.count
        let queueHead = Array(claimable.prefix(limits.queuedRows))
        let unplaced = Array(snapshot.unplaced.prefix(limits.unplacedRows))

        // Claims: those within their lease first, then lapsed, then given back.
        let running = counts.running.sorted { Self.claimRank($0) < Self.claimRank($1) }.prefix(limits.runningRows)

        let finished = try ResultListing(connection: connection).page(in: snapshot, limit: Int.max).results
        var completions: [Dashboard.FinishedTask] = [], failures: [Dashboard.FinishedTask] = []
        for item in finished where (item.status == ResultStatus.completed.rawValue ? completions : failures).count < limits.finishedRows {
            let task = try self.finished(item, in: snapshot, limits: limits)
            if item.status == ResultStatus.completed.rawValue { completions.append(task) } else { failures.append(task) }
            if completions.count == limits.finishedRows && failures.count == limits.finishedRows { break }
        }

        let staleAfter = 3 * connection.settings.heartbeatSeconds
        var nodes: [Dashboard.NodeRow] = []
        numbers.nodes = counts.nodes.count
        for node in counts.nodeRecords {
            let silent = ISOTime.parse(node.lastHeartbeat).map { now.timeIntervalSince($0) }
            if node.health != "healthy" { numbers.nodesUnhealthy += 1 }
            if let circuit = node.gitCircuit, circuit != GitCircuitBreaker.State.closed.rawValue { numbers.nodesCircuitOpen += 1 }
            if silent.map({ $0 > staleAfter }) ?? true { numbers.nodesStale += 1 }
            numbers.slots += max(0, node.slots)
            if nodes.count < limits.nodeRows { nodes.append(Dashboard.NodeRow(summary: node, silentSeconds: silent)) }
        }
        if case .report(let report) = quotas { numbers.principals = report.principals.count }

        let dag = try GridDAG(connection: connection).report(in: snapshot)
        let graph = DependencyGraphLayout(tasks: dag.tasks, limits: limits)
        numbers.graph.tasks = graph.taskCount
        for task in dag.tasks { numbers.graph.byState[task.state.rawValue, default: 0] += 1 }
        numbers.graph.boxes = graph.boxes.count
        numbers.graph.summaryBoxes = graph.summaryBoxes
        numbers.graph.summarizedTasks = graph.summarizedTasks
        numbers.graph.edges = graph.edgeCount
        numbers.graph.edgesDrawn = graph.edges.count

        let events = audit.map { Array($0.prefix(limits.auditRows)) }
        numbers.auditEvents = events?.count
        numbers.shown = DashboardNumbers.Shown(
            queue: queueHead.count, running: running.count, completions: completions.count, failures: failures.count, nodes: nodes.count,
            principals: min(numbers.principals ?? 0, limits.principalRows), audit: events?.count ?? 0, unplaced: unplaced.count)
        numbers.limits = limits
        numbers.pageBound = limits.pageBound
        return Dashboard(numbers: numbers, limits: limits, generatedAt: now, queueHead: queueHead, unplaced: unplaced, running: Array(running),
                         completions: completions, failures: failures, nodes: nodes, quotas: quotas,
                         audit: events.map { .events($0) } ?? .omitted, graph: graph, staleAfterSeconds: staleAfter)
    }

    private static func claimRank(_ claim: GridStatus.Running) -> Int {
        claim.state == ClaimState.released.rawValue ? 2 : claim.expired ? 1 : 0
    }

    /// A finished task with the end of each stream, read from its record on main
    /// or its unfolded result; an archived one is in a bundle, which the page does not open.
    private func finished(_ item: ResultListing.Item, in snapshot: GridSnapshot, limits: DashboardLimits) throws(GridError) -> Dashboard.FinishedTask {
        let bytes: [UInt8]?
        switch item.place {
        case "main":
            bytes = snapshot.foldedLogs(of: item.taskID).first.flatMap { try? connection.blob($0, limit: Self.recordLimit) }
        case "unfolded":
            bytes = try snapshot.results[item.taskID].flatMap { (commit) throws(GridError) in try? connection.file("result.json", of: commit, limit: Self.recordLimit) } ?? nil
        default:
            return Dashboard.FinishedTask(item: item, output: nil, note: "Archived: <code>dgrid result</code> reads its record out of its bundle.")
        }
        guard let bytes, let record = ResultRecord.parse(bytes), record.taskID == item.taskID else {
            return Dashboard.FinishedTask(item: item, output: nil, note: "Its record could not be read (missing, not a record of this task, or over \(Self.recordLimit >> 20) MiB).")
        }
        let (stdout, stdoutCut) = Self.tail(record.stdout, bytes: limits.excerptBytes)
        let (stderr, stderrCut) = Self.tail(record.stderr, bytes: limits.excerptBytes)
        let output = Dashboard.OutputExcerpt(
            stdout: stdout, stderr: stderr, stdoutBytes: max(record.stdoutBytes, UInt64(record.stdout.utf8.count)),
            stderrBytes: max(record.stderrBytes, UInt64(record.stderr.utf8.count)),
            stdoutTruncated: record.stdoutTruncated, stderrTruncated: record.stderrTruncated, stdoutCut: stdoutCut, stderrCut: stderrCut,
            durationMs: record.durationMs, timedOut: record.timedOut, oomKilled: record.oomKilled)
        return Dashboard.FinishedTask(item: item, output: output, note: nil)
    }

    /// The most of a record read for its output, as `dgrid result` reads it.
    static let recordLimit = 4 << 20

    /// The last `bytes` bytes of `text`, starting on a whole character; and whether anything was cut.
    static func tail(_ text: String, bytes: Int) -> (String, Bool) {
        let utf8 = text.utf8
        guard utf8.count > bytes else { return (text, false) }
        var start = utf8.index(utf8.endIndex, offsetBy: -max(0, bytes))
        // Past continuation bytes (10xxxxxx) to the start of a character.
        while start < utf8.endIndex, utf8[start] & 0xC0 == 0x80 { start = utf8.index(after: start) }
        return (String(decoding: utf8[start...], as: UTF8.self), true)
    }
}
