import Foundation
import Sandbox

/// Runs one claimed task in the sandbox and turns the outcome into the
/// result record the grid publishes (docs/ARCHITECTURE.md §6), or into a host
/// fault when the task could not start for this worker's own reasons (§7).
/// The sandbox API is the only way in: SandboxSpec in, Outcome out.
struct TaskExecution {
    let settings: GridSettings
    let runner: SandboxRunner
    let store: ImageStore?
    /// The default profile, compiled once per worker (not read again per task).
    let seccomp: Result<SeccompFilter, SeccompError>

    /// What a task run produced: the record, and a one-line note for the log.
    struct Finished {
        var record: ResultRecord
        let note: String
        /// The task hit its pids limit (fork refused): a security event for the audit log.
        var pidsLimitHit = false
        /// The sandbox could not be set up for a reason of the task's (its image): why, for the audit log.
        var setupFailure: String?
        /// Artifacts for the Git store, published with the record (docs/ARCHITECTURE.md §10).
        var artifactBlobs: [(hex: String, bytes: [UInt8])] = []
        /// When the sandbox ended (monotonic ns): the worker logs how long the result took to publish after it.
        var ranUntil: UInt64?
    }

    enum Execution {
        /// A result to publish: the task ran, or it is at fault and ends here.
        case finished(Finished)
        /// This worker could not start it: give the claim back.
        case hostFault(HostFault)
    }

    /// `egress`: what the host's policy lets this task reach; nil: no network.
    /// `volumes`: `/inputs` and the like, mounted as given (docs/ARCHITECTURE.md §10).
    /// `checkpoint`: the task's `/checkpoint`, restored from `snapshot`'s latest
    /// checkpoint and snapshotted while it runs. `watch`: the slot watchdog's handle on the sandbox.
    /// `onProgress`: each `::progress` line.
    func run(_ task: TaskFile, claim: ClaimRecord, egress: EgressGrant? = nil, volumes: [SandboxVolume] = [],
             checkpoint: CheckpointSession? = nil, snapshot: GridSnapshot? = nil, watch: SandboxWatch? = nil,
             onProgress: ((TaskProgress) -> Void)? = nil) -> Execution {
        let started = Date()
        let attempt = claim.attempt
        let history = claim.previousAttempts
        let image = task.image ?? settings.defaultImage
        let resolved: ResolvedImage
        do {
            guard let store else { throw GridError.local("no image store on this worker") }
            resolved = try ImageResolver(store: store).resolve(reference: image)
        } catch {
            let report = SetupFailureReport(image: image, error)
            // The default image is the worker's choice, never the task's fault.
            if task.image != nil, let failure = error as? ImageError, FaultOwner.of(failure) == .task {
                return .finished(rejected(task.taskID, reason: report.published, detail: report.detail, started: started,
                                          attempt: attempt, previousAttempts: history))
            }
            return .hostFault(HostFault(published: report.published, detail: report.detail, check: .image(image)))
        }
        defer { resolved.lease.release() }

        // The attempt (and, checkpointing, whether it resumes) are the worker's to say: a task's own values go.
        let ours: Set<String> = ["DGRID_ATTEMPT", "DGRID_RESUMED"]
        var spec = SandboxSpec(root: .layers(resolved.layers), command: ["/bin/sh", "-c", task.script],
                               environment: resolved.config.environment.filter { !ours.contains(String($0.prefix { $0 != "=" })) }
                                   + task.env.filter { !ours.contains($0.key) }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                                   + ["DGRID_ATTEMPT=\(attempt)"])
        spec.workingDirectory = resolved.config.workingDirectory
        if let user = resolved.config.user { spec.user = user }
        if let checkpoint, let snapshot {
            do {
                let (volume, restore) = try checkpoint.prepare(owner: spec.user, snapshot: snapshot)
                spec.volumes.append(volume)
                spec.freezer = checkpoint.freezer
                spec.environment.append("DGRID_RESUMED=\(checkpoint.resumed ? 1 : 0)")
                checkpoint.onRestore(restore)
            } catch {
                // The tmpfs needs root; a rootless host gives the task back for one that can.
                return .hostFault(HostFault(published: "this worker cannot give the task a /checkpoint (it needs a root worker)",
                                            detail: "\(error)", check: .sandbox))
            }
        }
        // /output: a tmpfs of the worker's output_size, read after the run (root only: a rootless worker gives none).
        let output = try? ScratchVolume(capacity: settings.outputSize, owner: spec.user)
        if let output { spec.volumes.append(SandboxVolume(name: OutputHarvest.volumeName, source: .scratch(output, readOnly: false))) }
        // The whole of stdout and stderr, in unnamed files: what the record's cap cuts is kept as an artifact.
        let spool = (try? settings.state.directory("run")).flatMap { try? OutputSpool(directory: $0, capacity: Int(clamping: settings.outputSize.bytes)) }
        spec.outputSpool = spool
        if let onProgress {
            spec.stdoutWatcher = OutputLineWatcher(prefix: TaskProgress.stdoutPrefix) { line in
                if let progress = TaskProgress(line: line) { onProgress(progress) }
            }
        }
        spec.timeoutSeconds = Double(task.timeoutSeconds)
        spec.watch = watch
        spec.outputLimit = settings.outputLimit
        spec.allowWithoutCgroupLimits = settings.runWithoutCgroupLimits
        spec.egress = egress
        spec.volumes += volumes
        let egressReport = egress.map { _ in EgressReport() }
        spec.egressReport = egressReport
        spec.limits.memoryBytes = task.resources.memoryBytes ?? settings.defaultMemoryBytes
        spec.limits.pids = task.resources.pids ?? settings.defaultPids
        if let cpus = task.resources.cpus ?? settings.defaultCPUs {
            spec.limits.cpus = try? CPUQuota(cpus: cpus)
        }
        switch seccomp {
        case .success(let filter): spec.seccomp = filter
        case .failure(let error):
            let report = SetupFailureReport(seccomp: error)
            return .hostFault(HostFault(published: report.published, detail: report.detail, check: .seccomp))
        }

        let outcome: Outcome
        checkpoint?.start()
        defer { checkpoint?.stop() }
        do {
            outcome = try runner.run(spec)
        } catch {
            // The sandbox could not be set up: the image's fault (published as failed),
            // or this worker's (given back). Either way the grid gets the stage and
            // errno; host paths stay in this worker's log.
            let report = SetupFailureReport(error)
            guard FaultOwner.of(error) == .task else {
                return .hostFault(HostFault(published: report.published, detail: report.detail, check: .sandbox))
            }
            var failed = rejected(task.taskID, reason: report.published, detail: report.detail, started: started,
                                  attempt: attempt, status: .failed, previousAttempts: history)
            failed.setupFailure = report.published
            return .finished(failed)
        }
        let finished = Date()
        let ranUntil = Clock.monotonicNanoseconds()
        var hasher = DigestHasher()
        hasher.update(outcome.stdout.bytes)
        let ok = outcome.exitCode == 0 && !outcome.timedOut && !outcome.oomKilled
        let record = ResultRecord(
            taskID: task.taskID, nodeID: settings.nodeID, exitCode: outcome.exitCode,
            stdout: outcome.stdout.text, stderr: outcome.stderr.text,
            timestamp: ISOTime.string(finished), status: ok ? .completed : .failed,
            startedAt: ISOTime.string(started), finishedAt: ISOTime.string(finished),
            durationMs: Int64(outcome.durationMs), timedOut: outcome.timedOut, oomKilled: outcome.oomKilled,
            signal: outcome.signal, cpuMs: outcome.cpuMs.map(Int64.init), maxRSSBytes: outcome.maxRssBytes,
            stdoutBytes: outcome.stdout.totalBytes, stdoutTruncated: outcome.stdout.truncated,
            stderrBytes: outcome.stderr.totalBytes, stderrTruncated: outcome.stderr.truncated,
            stdoutSHA256: "sha256:" + hasher.finalize().hex, imageDigest: resolved.manifestDigest.description,
            attempt: attempt, workerVersion: RunnerInfo.workerVersion, previousAttempts: history,
            unknownFields: task.unknownFields)
        var published = record
        published.egressBlocked = egressReport.map { $0.blockedPackets ?? 0 }
        // docs/ARCHITECTURE.md §10: /output and the streams past the record's cap, stored before the result is published.
        var harvest = OutputHarvest()
        if let output { harvest.collect(from: output.descriptor, limit: settings.outputSize.bytes) }
        if let spool {
            harvest.collect(.stdout, of: spool, recorded: outcome.stdout.bytes.count)
            harvest.collect(.stderr, of: spool, recorded: outcome.stderr.bytes.count)
        }
        let storing = Clock.monotonicMilliseconds()
        if let failure = harvest.store(in: ArtifactStores(settings: settings), taskID: task.taskID, root: output?.descriptor, spool: spool) {
            // The registry is this host's: the task's files are not lost to it, the task runs again (§7, "Host faults").
            return .hostFault(RegistryStoreFault.hostFault(failure, registry: settings.artifactRegistry))
        }
        if output != nil {
            published.artifacts = harvest.artifacts
            published.artifactsSkipped = harvest.skipped
        }
        published.stdoutArtifact = harvest.stdoutArtifact
        published.stderrArtifact = harvest.stderrArtifact
        let how = outcome.timedOut ? "timed out" : outcome.oomKilled ? "OOM-killed" : "exit \(outcome.exitCode)"
        let unenforced = outcome.unenforcedLimits.isEmpty
            ? "" : " (not enforced, no cgroup: \(outcome.unenforcedLimits.joined(separator: ", ")))"
        let stored = ([published.stdoutArtifact, published.stderrArtifact].compactMap { $0 } + published.artifacts)
            .filter { $0.store == .registry || $0.store == .directory }
        // What went to the registry or the directory, and how long that took (bench/artifacts.sh reads it).
        let kept = stored.isEmpty ? "" : "; \(stored.count) artifacts (\(stored.reduce(0) { $0 + $1.size }) bytes) to the "
            + "\(stored[0].store.rawValue) store in \(Int(Clock.monotonicMilliseconds() - storing)) ms"
        var done = Finished(record: published, note: "\(how) in \(outcome.durationMs) ms\(unenforced)\(kept)", pidsLimitHit: outcome.pidsLimitHit)
        done.artifactBlobs = harvest.gitBlobs
        done.ranUntil = ranUntil
        return .finished(done)
    }

    /// A task out of attempts (`AttemptBudget`): failed without running again,
    /// its record listing every attempt — who tried it and how each ended.
    func gaveUp(_ taskID: String, why: String, claim: ClaimRecord) -> Finished {
        let lines = [why] + claim.previousAttempts.map(\.summary)
        return rejected(taskID, reason: lines.joined(separator: "\n") + "\n", detail: why,
                        attempt: claim.previousAttempts.last?.attempt ?? claim.attempt, status: .failed,
                        previousAttempts: claim.previousAttempts)
    }

    /// A task that never ran: invalid (status "rejected", folded to tasks/rejected/)
    /// or unrunnable here ("failed"). The reason is the stderr of the record;
    /// `detail`, when given, replaces it in the log note (it may name host paths
    /// the record must not).
    func rejected(_ taskID: String, reason: String, detail: String? = nil, started: Date = Date(), attempt: Int,
                  status: ResultStatus = .rejected, previousAttempts: [AttemptRecord] = []) -> Finished {
        let now = ISOTime.string(Date())
        let record = ResultRecord(
            taskID: taskID, nodeID: settings.nodeID, exitCode: 125, stdout: "", stderr: reason,
            timestamp: now, status: status, startedAt: ISOTime.string(started), finishedAt: now,
            durationMs: 0, timedOut: false, oomKilled: false, signal: nil, cpuMs: nil, maxRSSBytes: nil,
            stdoutBytes: 0, stdoutTruncated: false, stderrBytes: UInt64(reason.utf8.count), stderrTruncated: false,
            stdoutSHA256: nil, imageDigest: nil, attempt: attempt, workerVersion: RunnerInfo.workerVersion,
            previousAttempts: previousAttempts)
        return Finished(record: record, note: "\(status.rawValue): \(detail ?? reason)")
    }
}
