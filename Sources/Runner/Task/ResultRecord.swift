/// The result of one run (docs/ARCHITECTURE.md §6): D-GRID's fields — `task_id`, `node_id`,
/// `exit_code`, `stdout`, `stderr`, `timestamp`, `status` — which D-GRID's dashboard
/// reads from `tasks/completed/<node>-<id>.json.log`, plus dgrid's measurements.
public struct ResultRecord: Equatable, Sendable {
    public var taskID: String
    public var nodeID: String
    public var exitCode: Int32
    public var stdout: String
    public var stderr: String
    public var timestamp: String
    /// D-GRID's `status`: completed iff exit 0 and not timed out / OOM-killed (`ResultStatus`).
    public var status: ResultStatus
    public var startedAt: String
    public var finishedAt: String
    public var durationMs: Int64
    public var timedOut: Bool
    public var oomKilled: Bool
    public var signal: Int32?
    public var cpuMs: Int64?
    public var maxRSSBytes: UInt64?
    public var stdoutBytes: UInt64
    public var stdoutTruncated: Bool
    public var stderrBytes: UInt64
    public var stderrTruncated: Bool
    public var stdoutSHA256: String?
    public var imageDigest: String?
    public var attempt: Int
    public var workerVersion: String
    /// How every earlier attempt ended (from the claim record): the nodes that
    /// tried and why they stopped, so a failed task says who it broke.
    public var previousAttempts: [AttemptRecord]
    /// Top-level task fields dgrid does not know (kept in the task file, listed
    /// here so the submitter sees they did nothing; docs/ARCHITECTURE.md §6).
    public var unknownFields: [String]
    /// The trusted principals whose signatures the worker checked before it ran
    /// the task (docs/ARCHITECTURE.md §9); empty for an unsigned task a host let run.
    public var signedBy: [String] = []
    /// Secrets scrubbed from stdout and stderr before publishing, by kind
    /// (`OutputRedactor`); never the values.
    public var redactions: [String: Int] = [:]
    /// With an egress grant: packets the filter dropped (docs/ARCHITECTURE.md §9); nil without one.
    public var egressBlocked: UInt64?
    /// Files the task left under `/output` (docs/ARCHITECTURE.md §10), and what was not kept, by why.
    public var artifacts: [Artifact] = []
    public var artifactsSkipped: [String: Int] = [:]
    /// The whole stream when the record keeps only its first `output_limit` bytes (docs/ARCHITECTURE.md §10).
    public var stdoutArtifact: Artifact?
    public var stderrArtifact: Artifact?
    /// The replica of a quorum task this record is the vote of (`refs/dgrid/results/<id>/<n>`,
    /// docs/ARCHITECTURE.md §11); nil for a task run once. Signed with the rest: a vote names its replica.
    public var replica: Int?
    /// false on the record a fold writes for a quorum task whose votes never agreed: the
    /// folder's statement, not a run (no node's failure; `dgrid reputation` passes over it).
    public var consensus: Bool?

    public init(
        taskID: String, nodeID: String, exitCode: Int32, stdout: String = "", stderr: String = "",
        timestamp: String = "", status: ResultStatus? = nil, startedAt: String = "", finishedAt: String = "",
        durationMs: Int64 = 0, timedOut: Bool = false, oomKilled: Bool = false, signal: Int32? = nil,
        cpuMs: Int64? = nil, maxRSSBytes: UInt64? = nil, stdoutBytes: UInt64 = 0, stdoutTruncated: Bool = false,
        stderrBytes: UInt64 = 0, stderrTruncated: Bool = false, stdoutSHA256: String? = nil,
        imageDigest: String? = nil, attempt: Int = 1, workerVersion: String = "",
        previousAttempts: [AttemptRecord] = [], unknownFields: [String] = []
    ) {
        self.taskID = taskID
        self.nodeID = nodeID
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
        self.timestamp = timestamp
        self.status = status ?? ResultStatus(exitCode: exitCode, timedOut: timedOut, oomKilled: oomKilled)
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.durationMs = durationMs
        self.timedOut = timedOut
        self.oomKilled = oomKilled
        self.signal = signal
        self.cpuMs = cpuMs
        self.maxRSSBytes = maxRSSBytes
        self.stdoutBytes = stdoutBytes
        self.stdoutTruncated = stdoutTruncated
        self.stderrBytes = stderrBytes
        self.stderrTruncated = stderrTruncated
        self.stdoutSHA256 = stdoutSHA256
        self.imageDigest = imageDigest
        self.attempt = attempt
        self.workerVersion = workerVersion
        self.previousAttempts = previousAttempts
        self.unknownFields = unknownFields
    }

    /// snake_case keys, sorted, pretty, trailing newline.
    public func json() -> [UInt8] {
        var members: [String: LedgerJSON.Value] = [
            "task_id": .string(taskID), "node_id": .string(nodeID), "exit_code": .int(Int64(exitCode)),
            "stdout": .string(stdout), "stderr": .string(stderr), "timestamp": .string(timestamp),
            "status": .string(status.rawValue), "started_at": .string(startedAt), "finished_at": .string(finishedAt),
            "duration_ms": .int(durationMs), "timed_out": .bool(timedOut), "oom_killed": .bool(oomKilled),
            "signal": .int(signal.map(Int64.init)), "cpu_ms": .int(cpuMs), "max_rss_bytes": .uint(maxRSSBytes),
            "stdout_bytes": .uint(stdoutBytes), "stdout_truncated": .bool(stdoutTruncated),
            "stderr_bytes": .uint(stderrBytes), "stderr_truncated": .bool(stderrTruncated),
            "stdout_sha256": .text(stdoutSHA256), "image_digest": .text(imageDigest),
            "attempt": .int(Int64(attempt)), "worker_version": .string(workerVersion),
            "previous_attempts": AttemptRecord.list(previousAttempts),
        ]
        if !unknownFields.isEmpty { members["unknown_fields"] = .array(unknownFields.map { .string($0) }) }
        if !signedBy.isEmpty { members["signed_by"] = .array(signedBy.map { .string($0) }) }
        if !redactions.isEmpty { members["redactions"] = .object(redactions.mapValues { .number(.init(Int64($0))) }) }
        if let egressBlocked { members["egress_blocked"] = .number(.init(Int64(clamping: egressBlocked))) }
        if !artifacts.isEmpty { members["artifacts"] = .array(artifacts.map { $0.value() }) }
        if let stdoutArtifact { members["stdout_artifact"] = stdoutArtifact.value() }
        if let stderrArtifact { members["stderr_artifact"] = stderrArtifact.value() }
        if let replica { members["replica"] = .number(.init(Int64(replica))) }
        if let consensus { members["consensus"] = .bool(consensus) }
        if !artifactsSkipped.isEmpty { members["artifacts_skipped"] = .object(artifactsSkipped.mapValues { .number(.init(Int64($0))) }) }
        return LedgerJSON.write(.object(members))
    }

    /// Reads what `json()` writes, and D-GRID's own seven-field records. Requires a
    /// valid `task_id` and `node_id` (they become paths) and an integer `exit_code`;
    /// a missing or unknown `status` is derived from the exit code. Nil for anything else.
    public static func parse(_ bytes: [UInt8]) -> ResultRecord? {
        guard let f = RecordFields(bytes),
              let taskID = f.string("task_id"), TaskParser.isValidTaskID(taskID),
              let nodeID = f.string("node_id"), LedgerLayout.isValidNodeID(nodeID),
              let exitCode = f.int32("exit_code") else { return nil }
        let timedOut = f.bool("timed_out") ?? false
        let oomKilled = f.bool("oom_killed") ?? false
        let stdout = f.string("stdout") ?? ""
        let stderr = f.string("stderr") ?? ""
        var record = ResultRecord(
            taskID: taskID, nodeID: nodeID, exitCode: exitCode, stdout: stdout, stderr: stderr,
            timestamp: f.string("timestamp") ?? "", status: f.string("status").flatMap(ResultStatus.init(rawValue:)),
            startedAt: f.string("started_at") ?? "", finishedAt: f.string("finished_at") ?? "",
            durationMs: f.integer("duration_ms") ?? 0, timedOut: timedOut, oomKilled: oomKilled,
            signal: f.int32("signal"), cpuMs: f.integer("cpu_ms"), maxRSSBytes: f.unsigned("max_rss_bytes"),
            stdoutBytes: f.unsigned("stdout_bytes") ?? UInt64(stdout.utf8.count),
            stdoutTruncated: f.bool("stdout_truncated") ?? false,
            stderrBytes: f.unsigned("stderr_bytes") ?? UInt64(stderr.utf8.count),
            stderrTruncated: f.bool("stderr_truncated") ?? false,
            stdoutSHA256: f.string("stdout_sha256"), imageDigest: f.string("image_digest"),
            attempt: f.int("attempt") ?? 1, workerVersion: f.string("worker_version") ?? "",
            previousAttempts: AttemptRecord.parseList(f.members["previous_attempts"]) ?? [],
            unknownFields: f.stringList("unknown_fields"))
        record.signedBy = f.stringList("signed_by")
        record.egressBlocked = f.int("egress_blocked").map { UInt64(max(0, $0)) }
        if case .array(let items)? = f.members["artifacts"] { record.artifacts = items.compactMap(Artifact.parse) }
        record.stdoutArtifact = f.members["stdout_artifact"].flatMap(Artifact.parse)
        record.stderrArtifact = f.members["stderr_artifact"].flatMap(Artifact.parse)
        if f.members["replica"] != nil && f.members["replica"] != .null {
            guard let replica = f.int("replica"), ReplicaRefs.replicaRange.contains(replica) else { return nil }
            record.replica = replica
        }
        record.consensus = f.bool("consensus")
        if case .object(let counts)? = f.members["artifacts_skipped"] {
            record.artifactsSkipped = counts.compactMapValues { if case .number(let n) = $0, let i = n.integer { return Int(i) }; return nil }
        }
        if case .object(let counts)? = f.members["redactions"] {
            record.redactions = counts.compactMapValues { if case .number(let n) = $0, let i = n.integer { return Int(i) }; return nil }
        }
        return record
    }
}
