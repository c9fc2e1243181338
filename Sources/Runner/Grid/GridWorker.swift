import Foundation
import Trust
import Logging
import Sandbox
import Synchronization

/// `dgrid worker` (docs/ARCHITECTURE.md §7): `slots` threads, each picking, claiming,
/// verifying, running in the sandbox, publishing; one heartbeat thread
/// renewing the leases of running tasks and the node record; folds at most
/// once per interval. A task this host cannot start (a host fault) is given
/// back at once, and the worker claims nothing more until its self-check
/// passes (`WorkerHealth`). The slots' Git operations are serialised by the
/// connection; the heartbeat's go through a ledger of their own, so no slot's
/// Git work delays a renewal; sandboxes run in parallel.
public final class GridWorker: @unchecked Sendable {
    public struct Options: Sendable {
        /// Drain what is claimable now, then fold and exit.
        public var once = false
        public var maxTasks: Int?
        /// What this host trusts (docs/ARCHITECTURE.md §9). By default every task
        /// must be signed and nobody is trusted: the CLI loads the host's files.
        public var signatures = TaskSignatureCheck(trust: HostTrust(store: TrustStore(allowedSigners: AllowedSigners(entries: []))))
        /// Where trust decisions and security events are recorded; nil: the log only.
        public var audit: AuditLog?
        /// The grid id this host first saw (`GridPin`); nil: main's is taken as it is.
        public var gridPin: GridPin?
        /// The highest fleet policy serial this host applied (`PolicySerialPin`).
        public var policyPin: PolicySerialPin?
        /// The service manager to tell about readiness, status and liveness
        /// (`$NOTIFY_SOCKET`, docs/ARCHITECTURE.md §12); nil when none asked.
        public var service: ServiceNotifier?
        /// Where the worker counts for Prometheus (docs/ARCHITECTURE.md §12); nil: nowhere.
        public var metrics: WorkerMetrics?
        /// Where health changes and security events go as signed webhooks; nil: nowhere.
        /// Sending only queues: a slot never waits on a receiver.
        public var webhook: WebhookDispatcher?
        public init() {}
    }

    public struct Summary: Sendable {
        public var completed = 0, failed = 0, rejected = 0, lost = 0
        /// Claims given back for a host fault.
        public var released = 0
        /// Why the worker was unhealthy when it stopped; nil when healthy.
        public var unhealthy: String?
        /// Tasks still running when a stop's grace period ran out; their claims were
        /// released, and their sandboxes end with the process, which the caller ends.
        public var abandoned = 0
        public var ran: Int { completed + failed + rejected }
    }

    let connection: GridConnection
    let options: Options
    let logger: Logger
    let runner: SandboxRunner
    let health: WorkerHealth
    /// The worker's own secrets and the policy's patterns, built once (`redact`).
    let redactor: OutputRedactor
    private let lock = NSLock()
    /// Under `lock`: a self-check may open the store or prepare the filter again.
    private var store: ImageStore?
    private var seccomp: Result<SeccompFilter, SeccompError>
    /// Set by a host fault or a passed self-check: the heartbeat beats now, not at its next interval.
    private let beatSoon = Atomic<Bool>(false)
    private var summary = Summary()
    private var started = 0
    private var running: [String: HeldClaim] = [:]
    /// How far each running task says it is (docs/ARCHITECTURE.md §10): the next renewal carries it.
    private var progress: [String: TaskProgress] = [:]
    /// Running tasks that checkpoint: snapshotted once more when the worker stops.
    private var checkpointing: [String: CheckpointSession] = [:]
    /// Tasks already reported as waiting on a quota (once per task, not per poll).
    private var deferralsNoted: Set<String> = []
    /// Claim commits this worker found refused by its reputation policy, said once each.
    private var claimRefusalsNoted: Set<GitOID> = []
    /// The trust in force for main's fleet policy as last seen (`FleetPolicy`), by its blobs.
    private var fleet: (key: String, check: TaskSignatureCheck, redactor: OutputRedactor)?
    private var lastFold = Date.distantPast
    /// When the node ref last moved: by the heartbeat thread, or carried by a result push.
    private var lastBeat = Date()
    private var lastHousekeeping = Date.distantPast
    private var lastReconcile = Date.distantPast
    /// Set by SIGTERM (through `stop(graceSeconds:)`): no new claims; running tasks finish.
    private let stopping = Atomic<Bool>(false)
    /// Set once every slot is done: the heartbeat keeps leases alive until then.
    private let slotsDone = Atomic<Bool>(false)
    private let stopRequest = WorkerStopRequest()
    /// Sandboxes past their timeout plus a grace are killed again, and their slots replaced (docs/ARCHITECTURE.md §12).
    private let watchdog: SlotWatchdog
    /// Every slot thread is in it until it ends, or until the watchdog replaces it
    /// (the watchdog then leaves for it, and the thread, back at last, does not).
    private let slots = DispatchGroup()
    /// `$DGRID_HOME/nodes/<node>.lock`, held for this process's life: while it is held no
    /// other process on this host runs as this node; the kernel drops it however we die.
    private var nodeLock: FileLock?

    public init(connection: GridConnection, options: Options, logger: Logger) {
        self.connection = connection
        self.options = options
        self.logger = logger
        runner = SandboxRunner.forThisHost()
        store = try? ImageStore(state: connection.settings.state)
        let state = connection.settings.state
        seccomp = Result { () throws(SeccompError) in try DefaultSeccomp.filter(state: state) }
        let (metrics, webhook, nodeID) = (options.metrics, options.webhook, connection.settings.nodeID)
        health = WorkerHealth(baseSeconds: connection.settings.healthCheckSeconds,
                              ceilingSeconds: connection.settings.healthCheckCeilingSeconds) { state, check in
            metrics?.health(check.map(HealthReason.init))
            webhook?.send(WorkerEvents.health(state, check: check, nodeID: nodeID))
        }
        redactor = Self.redactor(settings: connection.settings, policy: options.signatures.trust.policy)
        watchdog = SlotWatchdog(graceSeconds: connection.settings.slotWatchdogSeconds)
    }

    /// The worker's own secrets (its Git token) and `policy`'s patterns, compiled once per policy.
    static func redactor(settings: GridSettings, policy: TrustPolicy) -> OutputRedactor {
        var credentials: [String] = []
        if case .token(let token) = settings.credentials { credentials.append(token) }
        return OutputRedactor(credentials: credentials, patterns: policy.redactPatterns.map { ("policy", $0) })
    }

    /// SIGTERM (docs/ARCHITECTURE.md §7): no new claims; running tasks get `graceSeconds`
    /// to finish. After that `run` releases their claims, so other workers take
    /// the tasks at once instead of after the lease, and returns with them
    /// counted as `abandoned`; the caller ends the process, and the sandboxes
    /// die with it (their pid 1 has PDEATHSIG).
    public func stop(graceSeconds: Double) {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        logger.info("stopping: no new claims", metadata: ["grace_s": "\(graceSeconds)"])
        options.service?.stopping(status: serviceStatus().line)
        stopRequest.request(graceSeconds: graceSeconds)
    }

    /// Releases the claims of tasks still running; how many there were.
    private func releaseClaimsAfterGrace() -> Int {
        // What the tasks have done so far survives them: the next holder resumes from it.
        for session in lock.withLock({ Array(checkpointing.values) }) {
            session.snapshotNow()
        }
        let held = lock.withLock { Array(running.values) }
        let claims = GridClaims(connection: connection)
        let reason = "given back: worker \(connection.settings.nodeID) stopping (SIGTERM, grace period over)"
        for claim in held {
            do {
                try claims.release(claim, ending: .givenBack, reason: reason)
                logger.warning("grace period over: claim released", metadata: ["task": "\(claim.taskID)"])
            } catch {
                logger.warning("grace period over: cannot release the claim; it expires with its lease",
                               metadata: ["task": "\(claim.taskID)", "error": "\(error)"])
            }
        }
        return held.count
    }

    public func run() throws(GridError) -> Summary {
        let settings = connection.settings
        runner.removeStaleGroups()
        EgressNetwork.removeStale()
        TaskInputs.sweep(state: settings.state)
        // A fresh host without the default image would fail every task naming
        // none: say so, with the command that fixes it, before claiming anything.
        if let problem = DefaultImageCheck(store: lock.withLock({ store }), reference: settings.defaultImage).problem() {
            let reason = "default " + problem.published
            logger.error("this worker cannot run tasks that name no image", metadata: ["reason": "\(reason)",
                                                                                      "detail": "\(problem.detail)"])
            // Draining once is pointless without it: refuse. A long-running worker stays
            // up, unhealthy, and starts claiming as soon as the image is there.
            if options.once { throw .local("this worker cannot run tasks: \(reason)") }
            health.fault(reason: reason, check: .image(settings.defaultImage), now: Date())
        }
        // A registry store that does not answer would make every task with a large output a host fault
        // after it ran: find out before claiming (docs/ARCHITECTURE.md §10).
        if let registry = settings.artifactRegistry, let failure = RegistryHelper(settings: settings).check(registry) {
            let fault = RegistryStoreFault.hostFault(failure, registry: registry)
            logger.error("the artifact registry is not usable", metadata: ["registry": "\(registry)", "error": "\(fault.detail)"])
            if options.once { throw .local("this worker cannot keep large artifacts: \(fault.detail)") }
            if health.isHealthy { health.fault(reason: fault.published, check: .artifactRegistry, now: Date()) }
        }
        releaseClaimsOfAnEarlierRun()
        try NodeHeartbeat(connection: connection, health: health.state).beat(status: "active")
        logger.info("worker started", metadata: ["node": "\(settings.nodeID)", "slots": "\(settings.slots)",
                                                  "repo": "\(settings.repository)"])
        if let service = options.service {
            // Ready means synced: main fetched and the refs listed, as a claim
            // needs them. Only under a service manager, so a worker run by hand
            // starts exactly as before; the first poll then finds main fetched.
            _ = try connection.snapshot()
            service.ready(status: serviceStatus().line, now: GridConnection.monotonicNow())
        }
        let heartbeat = Thread { [self] in heartbeatLoop() }
        heartbeat.start()
        for slot in 0..<max(1, settings.slots) { startSlot(slot) }
        if !stopRequest.waitForSlots(slots) {
            let abandoned = releaseClaimsAfterGrace()
            if abandoned > 0 { return lock.withLock { var summary = summary; summary.abandoned = abandoned; return summary } }
            // The busy slots hold no claim (picking, or done publishing): they see `stopping` and end.
            slots.wait()
        }
        stopping.store(true, ordering: .relaxed)
        slotsDone.store(true, ordering: .relaxed)
        // The last beat first, so the closing fold carries it and a fold after ours finds nothing.
        try? NodeHeartbeat(connection: connection, health: health.state).beat(status: "stopped")
        let folded = try GridFold(connection: connection, workerTrust: connection.workerTrust, audit: options.audit).run()
        logger.info("fold", metadata: ["result": "\(folded)"])
        var result = lock.withLock { summary }
        result.unhealthy = health.state.reason
        return result
    }

    private func startSlot(_ slot: Int) {
        slots.enter()
        let thread = Thread { [self] in
            // A replaced thread was left for when the watchdog replaced it.
            if slotLoop(slot) == .ended { slots.leave() }
        }
        thread.stackSize = 4 << 20
        thread.start()
    }

    /// How a slot thread's loop ended: by itself (stopping, draining, its task count
    /// reached), or replaced by the slot watchdog while a sandbox held it.
    private enum SlotEnd { case ended, replaced }

    private func slotLoop(_ slot: Int) -> SlotEnd {
        let settings = connection.settings
        var idle = settings.pollSeconds
        // Right after a task the slot picks from the listing its result push was shown (or
        // another slot's newer one), not from a listing of its own (`TaskPicker.reuseSeconds`);
        // never one taken before the task ran, which shows it still to do. nil: no task just ran.
        // The first pick walks what the worker's start listed (`releaseClaimsOfAnEarlierRun`, the
        // first beat's push) while that is young: at a hundred workers' start, a listing each.
        var ranFrom: Double? = -.infinity
        while !stopping.load(ordering: .relaxed) {
            guard health.isHealthy else {
                // Claims nothing; a draining (--once) worker is done.
                if options.once { return .ended }
                if let check = health.dueCheck(now: Date()) { selfCheck(check) } else { Self.sleep(min(0.5, health.secondsUntilCheck(now: Date()) + 0.05)) }
                continue
            }
            let allowed = lock.withLock { () -> Bool in
                if let max = options.maxTasks, started >= max { return false }
                started += 1
                return true
            }
            guard allowed else { return .ended }
            let pick: TaskPicker.Pick?
            let afterTask = ranFrom
            ranFrom = nil
            do {
                pick = try TaskPicker(connection: connection, trustFor: trust(for:), onDefer: noteDeferral,
                                      onClaimed: { [self] claim in lock.withLock { running[claim.taskID] = claim } },
                                      onDropped: { [self] id in lock.withLock { running.removeValue(forKey: id) } },
                                      onClaimRefused: noteClaimRefused,
                                      onPollCost: { [self] cost in
                                          logger.debug("poll", metadata: ["slot": "\(slot)", "list_ms": "\(String(format: "%.2f", cost.listMilliseconds))",
                                                                          "ready_ms": "\(String(format: "%.2f", cost.readinessMilliseconds))",
                                                                          "queued": "\(cost.queued)", "candidates": "\(cost.candidates)"])
                                      }).next(reusingWithin: afterTask == nil ? 0 : TaskPicker.reuseSeconds,
                                             takenAfter: afterTask ?? -.infinity)
            } catch {
                lock.withLock { started -= 1 }
                logger.warning("cannot reach the grid", metadata: ["slot": "\(slot)", "error": "\(error)"])
                if options.once { return .ended }
                Self.sleep(Self.jittered(idle))
                idle = min(idle * 1.5, settings.pollCeilingSeconds)
                continue
            }
            guard let pick else {
                lock.withLock { started -= 1 }
                let foldable = connection.lastListingHasWorkToFold() || connection.lastListingHasDependencyEndings()
                if options.once {
                    // Folding what finished may make its dependents ready (docs/ARCHITECTURE.md §10):
                    // a draining worker folds and looks again, and stops when a fold changes nothing.
                    if foldable, foldNow() { continue }
                    return .ended
                }
                // Idle: an idle poll costs one ref listing, nothing more — a fold
                // only when that listing shows results, new claims or tasks a dependency
                // rules out, or now and then to bring heartbeats into nodes/ for D-GRID's dashboard.
                if foldable || nodeRecordsDue() || backendsDue() { foldIfDue() }
                Self.sleep(Self.jittered(max(idle, fleetShare())))
                idle = min(idle * 1.5, settings.pollCeilingSeconds)
                continue
            }
            idle = settings.pollSeconds
            let began = GridConnection.monotonicNow()
            if execute(pick, slot: slot) == .replaced { return .replaced }
            foldIfDue()
            ranFrom = began
        }
        return .ended
    }

    /// Records a trust decision or security event (docs/ARCHITECTURE.md §9) in the audit log,
    /// counts it (signature and quota refusals), and sends the security events as webhooks.
    private func audit(_ event: AuditEvent) {
        options.audit?.record(event)
        options.metrics?.audited(event.kind)
        if event.kind.isSecurityEvent { options.webhook?.send(WorkerEvents.security(event)) }
    }

    /// The trust in force for `snapshot`: this host's, with main's fleet policy
    /// beneath it when that holds (docs/ARCHITECTURE.md §9). Worked out once per
    /// version of the policy on main; each change is logged and audited.
    private func trust(for snapshot: GridSnapshot) throws(GridError) -> TaskSignatureCheck {
        let policyBlob = snapshot.files[FleetPolicy.path], signatureBlob = snapshot.files[FleetPolicy.signaturePath]
        let key = (policyBlob?.hex ?? "-") + ":" + (signatureBlob?.hex ?? "-")
        if let cached = lock.withLock({ fleet }), cached.key == key { return cached.check }
        let base = options.signatures
        var check = base, redactor = self.redactor
        if policyBlob != nil {
            let (trust, outcome) = try connection.fleetTrust(base.trust, in: snapshot, pin: options.policyPin)
            switch outcome {
            case .applied(let serial, let signers):
                logger.info("fleet policy applied", metadata: ["serial": "\(serial)", "signed_by": "\(signers.joined(separator: ","))"])
                audit(AuditEvent(kind: .policyApplied, nodeID: connection.settings.nodeID, principals: signers,
                                                 reason: "\(FleetPolicy.path) serial \(serial)"))
                check = TaskSignatureCheck(trust: trust, allowUnsigned: base.allowUnsigned, defaultImage: base.defaultImage)
                redactor = Self.redactor(settings: connection.settings, policy: trust.policy)
            case .refused(let why):
                logger.warning("fleet policy refused; this host's own policy stays in force", metadata: ["reason": "\(UntrustedText.lineSafe(why))"])
                audit(AuditEvent(kind: .policyRefused, nodeID: connection.settings.nodeID, reason: why))
            case .absent:
                break
            }
        }
        lock.withLock { fleet = (key, check, redactor) }
        return check
    }

    /// A claim this host's reputation policy refuses (docs/ARCHITECTURE.md §11): the task is taken over; logged and audited once per claim.
    private func noteClaimRefused(_ commit: GitOID, _ taskID: String, _ node: String, _ why: String) {
        guard lock.withLock({ claimRefusalsNoted.insert(commit).inserted }) else { return }
        logger.warning("a claim this host's reputation policy refuses: taken over", metadata: ["task": "\(taskID)", "node": "\(node)", "reason": "\(why)"])
        audit(AuditEvent(kind: .claimRefused, nodeID: node, taskID: taskID, reason: "\(why): its claim on task \(taskID) binds nobody here (commit \(commit))"))
    }

    /// A task waits on a counted limit (docs/ARCHITECTURE.md §9): logged and audited once per task.
    private func noteDeferral(_ taskID: String, _ why: String) {
        guard lock.withLock({ deferralsNoted.insert(taskID).inserted }) else { return }
        logger.info("waiting: quota", metadata: ["task": "\(taskID)", "reason": "\(why)"])
        audit(AuditEvent(kind: .quotaDeferred, nodeID: connection.settings.nodeID, taskID: taskID, reason: why))
    }

    /// Refuses a task its principal's policy does not allow: rejected with why, audited.
    private func refuse(_ id: String, principals: [String], _ refusal: AdmissionRefusal, claim: HeldClaim,
                        execution: TaskExecution) -> TaskExecution.Finished {
        let kind: AuditEvent.Kind = if case .image = refusal { .imageRefused } else { .quotaRefused }
        logger.warning("refused by this host's policy", metadata: ["task": "\(id)", "reason": "\(UntrustedText.lineSafe("\(refusal)"))"])
        audit(AuditEvent(kind: kind, nodeID: connection.settings.nodeID, taskID: id, principals: principals, reason: "\(refusal)"))
        return execution.rejected(id, reason: "refused by this host's policy: \(refusal)", attempt: claim.record.attempt,
                                  previousAttempts: claim.record.previousAttempts)
    }

    /// Scrubs secrets from the output before the record is published
    /// (docs/ARCHITECTURE.md §9): counts by kind go in the record and the audit log.
    private func redact(_ record: inout ResultRecord, task: TaskFile, check: TaskSignatureCheck) {
        let settings = connection.settings
        let base = lock.withLock { fleet?.redactor } ?? self.redactor
        let redactor = base.adding(secretValues: check.trust.policy.secretEnv.compactMap { task.env[$0] })
        let out = redactor.redact(record.stdout), err = redactor.redact(record.stderr)
        let counts = out.counts.merging(err.counts, uniquingKeysWith: +)
        guard !counts.isEmpty else { return }
        record.stdout = out.text
        record.stderr = err.text
        if !out.counts.isEmpty {
            var hasher = DigestHasher()
            hasher.update(Array(out.text.utf8))
            record.stdoutSHA256 = "sha256:" + hasher.finalize().hex
        }
        record.redactions = counts
        let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", ")
        logger.warning("output redacted", metadata: ["task": "\(task.taskID)", "redactions": "\(summary)"])
        audit(AuditEvent(kind: .outputRedacted, nodeID: settings.nodeID, taskID: task.taskID, reason: summary))
    }

    @discardableResult
    private func execute(_ pick: TaskPicker.Pick, slot: Int) -> SlotEnd {
        let settings = connection.settings
        let claim = pick.claim
        let id = claim.taskID
        // Already renewed since the pick (`onClaimed`): keep the renewed commit.
        lock.withLock { if running[id] == nil { running[id] = claim } }
        options.metrics?.claimed(afterMilliseconds: pick.claimMilliseconds, racesLost: pick.racesLost)
        options.metrics?.slotBusy()
        defer { options.metrics?.slotFree() }
        logger.info("claimed", metadata: ["task": "\(id)", "slot": "\(slot)", "attempt": "\(claim.record.attempt)",
                                          "claim_ms": "\(pick.claimMilliseconds)", "races_lost": "\(pick.racesLost)"])
        let execution = lock.withLock { TaskExecution(settings: settings, runner: runner, store: store, seccomp: seccomp) }
        // The trust the pick was made under (the fleet policy of that listing).
        let check = pick.trust ?? options.signatures
        let history = claim.record.previousAttempts
        let finished: TaskExecution.Finished
        switch pick.unreadable.map({ Result<TaskFile, TaskRejection>.failure(TaskRejection(reason: $0)) })
            ?? TaskParser.parse(pick.taskBytes, limits: settings.limits) {
        case .failure(let rejection):
            finished = execution.rejected(id, reason: rejection.reason, attempt: claim.record.attempt, previousAttempts: history)
        case .success(let task) where task.taskID != id:
            finished = execution.rejected(id, reason: "task_id '\(task.taskID)' does not match the file name '\(id)'",
                                          attempt: claim.record.attempt, previousAttempts: history)
        case .success(var task):
            let authentication: TaskAuthentication
            do {
                // The replay check already ran: the picker withdraws claims on finished tasks.
                var grid = pick.grid
                if let pin = options.gridPin, !pick.signatures.isEmpty { grid = try pin.check(pick.grid).get() }
                authentication = try check.check(task: task, bytes: pick.taskBytes, signatures: pick.signatures,
                                                 grid: grid, finished: false)
            } catch {
                logger.warning("refused by this host's trust policy", metadata: ["task": "\(id)", "reason": "\(UntrustedText.lineSafe("\(error)"))"])
                audit(AuditEvent(kind: .signatureRefused, nodeID: settings.nodeID, taskID: id, reason: "\(error)"))
                finished = execution.rejected(id, reason: "refused by this host's trust policy: \(error)",
                                              attempt: claim.record.attempt, previousAttempts: history)
                break
            }
            if authentication.isSigned {
                logger.info("signature accepted", metadata: ["task": "\(id)", "signed_by": "\(authentication.principals.joined(separator: ","))",
                                                             "keys": "\(authentication.fingerprints.joined(separator: ","))"])
                audit(AuditEvent(kind: .signatureAccepted, nodeID: settings.nodeID, taskID: id,
                                                 principals: authentication.principals, fingerprints: authentication.fingerprints))
            } else {
                audit(AuditEvent(kind: .unsignedRun, nodeID: settings.nodeID, taskID: id,
                                                 reason: "unsigned tasks are allowed on this host"))
            }
            if let refused = pick.refused {
                finished = refuse(id, principals: authentication.principals, refused, claim: claim, execution: execution)
                break
            }
            do {
                task = try TaskAdmission(policy: check.trust.policy, settings: settings).admit(task, principal: authentication.principal)
            } catch {
                finished = refuse(id, principals: authentication.principals, error, claim: claim, execution: execution)
                break
            }
            let budget = AttemptBudget(maxAttempts: task.maxAttempts ?? settings.defaultMaxAttempts)
            if case .exhausted(let why) = budget.verdict(history) {
                finished = execution.gaveUp(id, why: why, claim: claim.record)
                break
            }
            let egress = check.trust.policy.egressGrant(principal: authentication.principal, image: task.image ?? settings.defaultImage)
            let outcome: TaskExecution.Execution
            let session = checkpointSession(for: task, claim: claim, principals: authentication.principals)
            let watch = watchdog.watch(taskID: id, slot: slot, timeoutSeconds: task.timeoutSeconds)
            defer {
                lock.withLock {
                    checkpointing[id] = nil
                    progress[id] = nil
                }
            }
            do {
                // docs/ARCHITECTURE.md §10: the dependencies' results, read-only at /inputs; the latest checkpoint.
                // A listing only for a task that needs one: most tasks start without another round trip.
                let listing = task.dependsOn.isEmpty && session == nil ? nil : try connection.snapshot()
                let inputs = try listing.flatMap { (listing) throws(GridError) in try TaskInputs.prepare(for: task, snapshot: listing, connection: connection) }
                defer { inputs?.remove() }
                outcome = execution.run(task, claim: claim.record, egress: egress, volumes: inputs.map { [$0.volume] } ?? [],
                                        checkpoint: session, snapshot: listing, watch: watch,
                                        onProgress: { [self] said in lock.withLock { progress[id] = said } })
            } catch .artifactRegistry(let why) {
                outcome = .hostFault(HostFault(published: "this worker could not give the task its /inputs: its artifact registry did not answer",
                                               detail: why, check: .artifactRegistry))
            } catch {
                outcome = .hostFault(HostFault(published: "this worker could not give the task its /inputs", detail: "\(error)", check: .sandbox))
            }
            if watchdog.ended(watch) {
                // The watchdog gave the claim back and put another thread in this slot: nothing of this run counts.
                logger.warning("a sandbox the watchdog could not kill ended; its result is dropped (the task went back to the grid)",
                               metadata: ["task": "\(id)", "slot": "\(slot)"])
                return .replaced
            }
            switch outcome {
            case .finished(var ran):
                if ran.record.imageDigest != nil { health.taskStarted() }
                ran.record.signedBy = authentication.principals
                redact(&ran.record, task: task, check: check)
                if ran.record.timedOut {
                    audit(AuditEvent(kind: .taskTimedOut, nodeID: settings.nodeID, taskID: id, principals: authentication.principals,
                                                     reason: "killed at its timeout of \(task.timeoutSeconds) s"))
                }
                if let blocked = ran.record.egressBlocked, blocked > 0 {
                    logger.warning("egress blocked", metadata: ["task": "\(id)", "packets": "\(blocked)"])
                    audit(AuditEvent(kind: .egressBlocked, nodeID: settings.nodeID, taskID: id, principals: authentication.principals,
                                                     reason: "\(blocked) packets to destinations outside the task's grant dropped"))
                }
                if ran.record.signal == SIGSYS {
                    audit(AuditEvent(kind: .seccompKilled, nodeID: settings.nodeID, taskID: id, principals: authentication.principals,
                                                     reason: "killed by SIGSYS: a system call the seccomp filter forbids"))
                }
                if ran.pidsLimitHit {
                    audit(AuditEvent(kind: .pidsLimitHit, nodeID: settings.nodeID, taskID: id, principals: authentication.principals,
                                                     reason: "a fork was refused at the task's pids limit"))
                }
                if let why = ran.setupFailure {
                    audit(AuditEvent(kind: .setupFailed, nodeID: settings.nodeID, taskID: id, principals: authentication.principals, reason: why))
                }
                if ran.record.oomKilled {
                    audit(AuditEvent(kind: .taskOOMKilled, nodeID: settings.nodeID, taskID: id, principals: authentication.principals))
                }
                finished = ran
            case .hostFault(let fault):
                giveBack(claim, for: fault)
                return .ended
            }
        }
        do {
            // A replica's record is its vote: it names the replica, under the node's signature (docs/ARCHITECTURE.md §11).
            var record = finished.record
            record.replica = claim.record.replica
            let published = try publishRetrying(record, taskBytes: pick.taskBytes, taskID: id, artifacts: finished.artifactBlobs)
            lock.withLock { _ = running.removeValue(forKey: id) }
            lock.withLock {
                switch finished.record.status {
                case .completed: summary.completed += 1
                case .rejected: summary.rejected += 1
                case .failed, .skipped: summary.failed += 1
                }
                if !published { summary.lost += 1 }
            }
            // Only a task whose sandbox ran has a duration worth a histogram.
            let ran = finished.record.imageDigest != nil && TaskOutcome.ran.contains(TaskOutcome(finished.record.status))
            options.metrics?.taskEnded(published ? TaskOutcome(finished.record.status) : .unpublished,
                                       seconds: ran ? Double(finished.record.durationMs) / 1000 : nil)
            var metadata: Logger.Metadata = ["task": "\(id)", "status": "\(finished.record.status.rawValue)", "detail": "\(finished.note)"]
            // From the sandbox's end to the result on the grid: harvest, stores, publish (docs/ARCHITECTURE.md §10).
            if let ranUntil = finished.ranUntil {
                metadata["after_run_ms"] = "\((Clock.monotonicNanoseconds() - ranUntil) / 1_000_000)"
            }
            logger.info(published ? "published" : "result already published by another worker; ours dropped", metadata: metadata)
        } catch {
            lock.withLock { _ = running.removeValue(forKey: id) }
            // The claim's lease runs out and another worker runs the task again: nothing is lost.
            options.metrics?.taskEnded(.unpublished)
            logger.error("cannot publish result; the task will run again elsewhere once its lease expires",
                         metadata: ["task": "\(id)", "error": "\(error)"])
        }
        return .ended
    }

    /// The checkpoint session of a task that asks for one (docs/ARCHITECTURE.md §10),
    /// registered for a last snapshot should the worker stop; nil otherwise.
    private func checkpointSession(for task: TaskFile, claim: HeldClaim, principals: [String]) -> CheckpointSession? {
        // A quorum task's replicas would share one checkpoint ref: each runs afresh (docs/ARCHITECTURE.md §11).
        guard let interval = CheckpointSession.interval(of: task), claim.record.replica == nil else { return nil }
        let settings = connection.settings
        let id = task.taskID
        let session = CheckpointSession(taskID: id, attempt: claim.record.attempt, interval: interval,
                                        capacity: settings.checkpointSize, connection: connection)
        session.onProgress = { [self] said in lock.withLock { progress[id] = said } }
        session.onRestore = { [self] restore in
            switch restore {
            case .none:
                break
            case .restored(let files, let bytes, let milliseconds):
                logger.info("checkpoint restored", metadata: ["task": "\(id)", "attempt": "\(claim.record.attempt)", "files": "\(files)", "bytes": "\(bytes)",
                                                              "ms": "\(String(format: "%.1f", milliseconds))"])
            case .refused(let refusal):
                logger.warning("checkpoint not restored: the task starts afresh", metadata: ["task": "\(id)", "reason": "\(refusal)"])
                audit(AuditEvent(kind: .checkpointRefused, nodeID: settings.nodeID, taskID: id, principals: principals,
                                                 reason: "\(refusal)"))
            }
        }
        session.onSnapshot = { [self] result in
            switch result {
            case .success(let taken):
                logger.debug("checkpoint", metadata: ["task": "\(id)", "bytes": "\(taken.bytes)", "frozen_ms": "\(String(format: "%.1f", taken.frozenMs))",
                                                      "total_ms": "\(String(format: "%.1f", taken.totalMs))"])
            case .failure(let error):
                logger.warning("checkpoint not taken", metadata: ["task": "\(id)", "error": "\(error)"])
            }
        }
        lock.withLock { checkpointing[id] = session }
        return session
    }

    /// A host fault (docs/ARCHITECTURE.md §7): unhealthy first, so no slot claims
    /// again, then the claim given back with why, so the task is runnable at
    /// once and the next holder keeps this attempt in its history.
    private func giveBack(_ picked: HeldClaim, for fault: HostFault) {
        let id = picked.taskID
        // As the heartbeat last renewed it; `release` follows a renewal pushed after this.
        let claim = lock.withLock { running.removeValue(forKey: id) } ?? picked
        health.fault(reason: fault.published, check: fault.check, now: Date())
        beatSoon.store(true, ordering: .relaxed)
        options.metrics?.taskEnded(.givenBack)
        audit(AuditEvent(kind: .setupFailed, nodeID: connection.settings.nodeID, taskID: id,
                                         reason: "host fault, task given back: " + fault.published))
        logger.error("host fault: task given back; claiming nothing until the self-check passes",
                     metadata: ["task": "\(id)", "error": "\(fault.detail)", "check": "\(fault.check)"])
        do {
            if try GridClaims(connection: connection).release(claim, ending: .hostFault, reason: "host fault: " + fault.published) {
                lock.withLock { summary.released += 1 }
            } else {
                logger.warning("claim no longer ours: another worker took the task over", metadata: ["task": "\(id)"])
            }
        } catch {
            logger.warning("cannot give the claim back; the task runs elsewhere once its lease expires",
                           metadata: ["task": "\(id)", "error": "\(error)"])
        }
    }

    /// Runs the self-check of an unhealthy worker (docs/ARCHITECTURE.md §7).
    private func selfCheck(_ check: HealthCheck) {
        var (currentStore, filter) = lock.withLock { (store, seccomp) }
        if currentStore == nil { currentStore = try? ImageStore(state: connection.settings.state) }
        let failure = HealthProbe(settings: connection.settings, runner: runner).run(check, store: currentStore, seccomp: &filter)
        lock.withLock {
            store = currentStore
            seccomp = filter
        }
        if let failure {
            health.failed(reason: failure.published, now: Date())
            logger.warning("self-check failed: still claiming nothing",
                           metadata: ["check": "\(check)", "error": "\(failure.detail)",
                                      "retry_in_s": "\(Int(health.secondsUntilCheck(now: Date()).rounded()))"])
        } else {
            health.passed()
            beatSoon.store(true, ordering: .relaxed)
            logger.info("self-check passed: claiming again", metadata: ["check": "\(check)"])
        }
    }

    /// A worker restarted after a crash (systemd's `Restart=on-failure`) still holds, on the
    /// grid, the claims its earlier process made: nobody runs those tasks, and waiting for
    /// the leases to lapse wastes them. It releases them at once (`worker_restarted`,
    /// counted like an expired lease), so any worker — this one too, restoring a
    /// checkpoint — takes them now. Only while this process holds its node's lock
    /// (`nodeLock`): two processes with one node id must not release each other's claims.
    /// A grid out of reach leaves the leases to lapse, as before.
    private func releaseClaimsOfAnEarlierRun() {
        let settings = connection.settings
        let lock: FileLock?
        do {
            // The node id is valid (GridConnection checked it): a plain file name.
            lock = try FileLock.take(path: try settings.state.directory("nodes") + "/" + settings.nodeID + ".lock",
                                     mode: .exclusive, wait: false)
        } catch {
            logger.warning("cannot take this node's lock; claims of an earlier run are left to lapse", metadata: ["error": "\(error)"])
            return
        }
        guard let lock else {
            logger.warning("another process on this host runs as this node: its claims are left alone", metadata: ["node": "\(settings.nodeID)"])
            return
        }
        nodeLock = consume lock
        guard let snapshot = try? connection.snapshot() else { return }
        // Every claim record in one fetch, as the picker's first listing reads them.
        try? connection.prefetch(Array(snapshot.claims.values) + snapshot.replicaClaims.values.flatMap(\.values))
        let claims = GridClaims(connection: connection)
        let replicas = snapshot.replicaClaims.flatMap { id, slots in slots.map { (id, $0.key as Int?, $0.value) } }
        for (taskID, replica, commit) in snapshot.claims.map({ ($0.key, nil as Int?, $0.value) }) + replicas {
            guard let record = try? claims.record(at: commit), record.taskID == taskID, record.replica == replica,
                  record.nodeID == settings.nodeID, record.state == .held else { continue }
            let held = HeldClaim(taskID: taskID, commit: commit, record: record)
            do {
                if try claims.release(held, ending: .workerRestarted,
                                      reason: "worker \(settings.nodeID) restarted: its earlier process ended with the task unfinished") {
                    logger.warning("released a claim of this node's earlier process", metadata: ["task": "\(taskID)", "attempt": "\(record.attempt)"])
                }
            } catch {
                logger.warning("cannot release a claim of this node's earlier process; it runs elsewhere once its lease expires",
                               metadata: ["task": "\(taskID)", "error": "\(error)"])
            }
        }
    }

    /// Every `self_check_seconds`, from the heartbeat thread: a failing check stops the claims at once.
    private func runPeriodicSelfCheck() {
        guard health.isHealthy else { return }
        guard let failure = WorkerSelfCheck(settings: connection.settings, runner: runner).run(store: lock.withLock({ store })) else { return }
        health.fault(reason: failure.published, check: .periodic, now: Date(), recheckEvery: connection.settings.selfCheckSeconds)
        logger.error("self-check failed: claiming nothing until it passes",
                     metadata: ["check": "\(failure.kind.rawValue)", "error": "\(failure.detail)"])
        beatSoon.store(true, ordering: .relaxed)
    }

    /// The remote may be down when a task finishes: keep the result and retry
    /// with backoff and jitter (the heartbeat keeps renewing the lease while
    /// it can), for about the lease time and at least a few attempts.
    private func publishRetrying(_ record: ResultRecord, taskBytes: [UInt8], taskID: String,
                                 artifacts: [(hex: String, bytes: [UInt8])] = []) throws(GridError) -> Bool {
        let deadline = Date().addingTimeInterval(max(connection.settings.leaseSeconds, 30))
        var delay = 0.5
        var attempt = 1
        while true {
            // The claim as the heartbeat last renewed it: the result commit sits on top of it.
            let claim = lock.withLock { running[taskID]?.commit }
            do {
                return try GridResults(connection: connection).publish(record, taskBytes: taskBytes, claim: claim, artifacts: artifacts,
                                                                       carrying: beatToCarry(besides: taskID),
                                                                       beatLanded: { landed in if landed { lock.withLock { lastBeat = Date() } } })
            } catch {
                guard attempt < 4 || Date() < deadline else { throw error }
                logger.warning("cannot publish yet; retrying", metadata: ["task": "\(taskID)", "attempt": "\(attempt)",
                                                                          "error": "\(error)"])
                Self.sleep(Self.jittered(delay))
                delay = min(delay * 2, 15)
                attempt += 1
            }
        }
    }

    /// The heartbeat a result push carries (`NodeHeartbeat.carried`): once half an interval has
    /// passed since the last beat, so a worker whose tasks end more often than that never beats
    /// with a push of its own. Only while no other claim is held: a carried beat renews none, and
    /// pushing the thread's next beat back would delay their renewals.
    private func beatToCarry(besides taskID: String) -> NodeHeartbeat? {
        let due = lock.withLock {
            running.keys.allSatisfy { $0 == taskID } && Date().timeIntervalSince(lastBeat) >= connection.settings.heartbeatSeconds / 2
        }
        return due ? NodeHeartbeat(connection: connection, health: health.state) : nil
    }

    /// On an idle grid, how often nodes/ on main is refreshed from the heartbeat refs.
    static let idleNodeFoldSeconds = 600.0

    private func nodeRecordsDue() -> Bool {
        lock.withLock { Date().timeIntervalSince(lastFold) >= Self.idleNodeFoldSeconds }
    }

    private func foldIfDue() {
        let due = lock.withLock { () -> Bool in
            guard Date().timeIntervalSince(lastFold) >= connection.settings.foldIntervalSeconds else { return false }
            lastFold = Date()
            return true
        }
        guard due else { return }
        foldNow()
    }

    /// Folds under the fold lease; whether main moved.
    @discardableResult
    private func foldNow() -> Bool {
        lock.withLock { lastFold = Date() }
        do {
            // A draining worker folds now or never: it reads a lease it has not seen before.
            guard try GridFoldLease(connection: connection).acquire(readingAnUnseenLease: options.once) else { return false }
            let folded = try GridFold(connection: connection, workerTrust: connection.workerTrust, audit: options.audit).run()
            logger.info("fold", metadata: ["result": "\(folded)"])
            reconcileBackendsIfDue()
            housekeepIfDue()
            return folded.mainMoved
        } catch {
            logger.warning("fold failed; another worker or a later fold will do it", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// How often the fold-lease holder brings the grid's other backends in step (docs/ARCHITECTURE.md §11).
    static let reconcileSeconds = 10.0

    private func backendsDue() -> Bool {
        connection.backends.count > 1
            && lock.withLock { Date().timeIntervalSince(lastReconcile) >= max(Self.reconcileSeconds, connection.settings.foldIntervalSeconds) }
    }

    /// Best effort: a backend that cannot be reached now is tried at the next turn.
    private func reconcileBackendsIfDue() {
        guard backendsDue() else { return }
        lock.withLock { lastReconcile = Date() }
        do {
            for outcome in try BackendReconciler(connection: connection).run() where outcome.main != .same || outcome.copiedResults > 0 {
                logger.info("backends", metadata: ["result": "\(outcome)"])
            }
        } catch {
            logger.warning("reconciling the grid's backends failed; the next turn tries again", metadata: ["error": "\(error)"])
        }
    }

    /// How often the fold-lease holder looks at archival and compaction.
    static let housekeepingSeconds = 3_600.0
    /// Compactions at most this often, whoever holds the lease (read from the history refs' names).
    static let compactionSeconds = 86_400.0

    /// Archival and compaction (docs/ARCHITECTURE.md §10), by the fold-lease holder
    /// once an hour: best effort, a failure is logged and tried at the next hour.
    private func housekeepIfDue() {
        let settings = connection.settings
        let due = lock.withLock { () -> Bool in
            guard Date().timeIntervalSince(lastHousekeeping) >= Self.housekeepingSeconds else { return false }
            lastHousekeeping = Date()
            return true
        }
        guard due else { return }
        if settings.archiveAfterSeconds > 0 {
            do {
                let archived = try GridArchive(connection: connection).run(olderThan: settings.archiveAfterSeconds)
                if archived.mainMoved { logger.info("archive", metadata: ["result": "\(archived)"]) }
            } catch {
                logger.warning("archiving failed; the next hour tries again", metadata: ["error": "\(error)"])
            }
        }
        guard settings.compactAfterCommits > 0 else { return }
        do {
            let compacted = try GridCompaction(connection: connection).run(
                minimumCommits: settings.compactAfterCommits, notWithin: Self.compactionSeconds, countAll: false)
            if compacted.historyRef != nil { logger.info("compact", metadata: ["result": "\(compacted)"]) }
        } catch {
            logger.warning("compacting main failed (a protected branch refuses it?); the next hour tries again",
                           metadata: ["error": "\(error)"])
        }
    }

    private func heartbeatLoop() {
        let settings = connection.settings
        var nextSelfCheck = Date().addingTimeInterval(settings.selfCheckSeconds)
        var shownCircuit = GitCircuitBreaker.State.closed
        while !slotsDone.load(ordering: .relaxed) {
            Self.sleep(0.2)
            // The breaker changes inside any slot's Git call; its gauge follows within a turn.
            let circuit = connection.circuit.snapshot().state
            if circuit != shownCircuit {
                options.metrics?.circuit(circuit)
                shownCircuit = circuit
            }
            for action in watchdog.due(now: Clock.monotonicNanoseconds()) { act(on: action) }
            if settings.selfCheckSeconds > 0 && Date() >= nextSelfCheck {
                nextSelfCheck = Date().addingTimeInterval(settings.selfCheckSeconds)
                runPeriodicSelfCheck()
            }
            // This loop keeps the leases alive, so it is the one whose turns the
            // watchdog counts: should it hang, the service manager restarts us.
            options.service?.pulse(status: serviceStatus().line, now: GridConnection.monotonicNow())
            // A result push that carried a beat moved the next one back (`beatToCarry`).
            let beatDue = lock.withLock { Date().timeIntervalSince(lastBeat) >= settings.heartbeatSeconds }
            guard beatDue || beatSoon.exchange(false, ordering: .relaxed) else { continue }
            lock.withLock { lastBeat = Date() }
            let held = lock.withLock {
                running.values.map { claim in
                    var claim = claim
                    if let said = progress[claim.taskID] { claim.record.progress = said.text }
                    return claim
                }
            }
            do {
                let renewals = try NodeHeartbeat(connection: connection, health: health.state).beat(status: "active", renewing: held)
                for (taskID, renewed) in renewals {
                    if let renewed {
                        lock.withLock { if running[taskID] != nil { running[taskID] = renewed } }
                    } else if lock.withLock({ running[taskID] != nil }) {
                        logger.warning("lease lost: another worker took the task over", metadata: ["task": "\(taskID)"])
                    }
                }
            } catch {
                logger.warning("cannot publish heartbeat or renew leases", metadata: ["error": "\(error)", "tasks": "\(held.count)"])
            }
        }
    }

    /// The slot watchdog's verdict, carried out on the heartbeat thread (docs/ARCHITECTURE.md §12).
    private func act(on action: SlotWatchdog.Action) {
        let nodeID = connection.settings.nodeID
        switch action {
        case .kill(let run, let overdue):
            let why = "its sandbox ran \(Int(overdue)) s past its timeout of \(Int(run.timeoutSeconds)) s: killed by the slot watchdog"
            logger.error("a sandbox outlived its timeout; the slot watchdog kills it", metadata: [
                "task": "\(run.taskID)", "slot": "\(run.slot)", "overdue_s": "\(Int(overdue))", "running": "\(run.watch.kill())"])
            audit(AuditEvent(kind: .sandboxOverdue, nodeID: nodeID, taskID: run.taskID, reason: why))
        case .replace(let run):
            // The stuck thread stays where it is (a thread cannot be killed): its slot gets a
            // new thread, and the group is left on its behalf — after the new one entered, so
            // the count never touches zero (a worker whose slots are all gone stops).
            if !stopping.load(ordering: .relaxed) { startSlot(run.slot) }
            slots.leave()
            audit(AuditEvent(kind: .sandboxOverdue, nodeID: nodeID, taskID: run.taskID,
                             reason: "a kill did not end its sandbox: slot \(run.slot) replaced, the task given back"))
            if let claim = lock.withLock({ running[run.taskID] }) {
                giveBack(claim, for: HostFault(published: "a sandbox of this worker outlived its timeout and could not be killed",
                                               detail: "task \(run.taskID) on slot \(run.slot): still running after a kill by the slot watchdog",
                                               check: .sandbox))
            }
        }
    }

    /// What `systemctl status` says about this worker now.
    private func serviceStatus() -> WorkerServiceStatus {
        lock.withLock {
            WorkerServiceStatus(health: health.state, stopping: stopping.load(ordering: .relaxed), running: running.count,
                                slots: max(1, connection.settings.slots), completed: summary.completed, failed: summary.failed,
                                rejected: summary.rejected)
        }
    }

    /// This idle slot's share of the fleet's listing budget, by the nodes its last listing showed.
    private func fleetShare() -> Double {
        connection.settings.idleListingFloor(nodes: connection.lastSnapshot()?.nodes.count ?? 0)
    }

    static func jittered(_ seconds: Double) -> Double {
        seconds * Double.random(in: 0.8...1.2)
    }

    static func sleep(_ seconds: Double) {
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
