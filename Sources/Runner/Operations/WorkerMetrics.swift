import CoreMetrics
import Synchronization

/// What a worker counts for Prometheus (docs/ARCHITECTURE.md §12), recorded
/// through swift-metrics' API with the factory the CLI hands in (a Prometheus
/// registry when `metrics_listen` is set; swift-metrics' no-op otherwise, so
/// a worker without metrics pays nothing). No global: the factory is passed,
/// never bootstrapped. Every labelled series is made up front from a closed
/// enum, so each exists at 0 before the first event (a query for "completed
/// since start" works on a fresh worker) and no label value comes from input.
///
/// Names follow Prometheus' conventions: `dgrid_worker_` prefix, base units
/// in the name (`_seconds`), `_total` on counters.
public final class WorkerMetrics: Sendable {
    public enum Name {
        public static let info = "dgrid_worker_info"
        public static let tasks = "dgrid_worker_tasks_total"
        public static let taskDuration = "dgrid_worker_task_duration_seconds"
        public static let slots = "dgrid_worker_slots"
        public static let slotsBusy = "dgrid_worker_slots_busy"
        public static let claimLatency = "dgrid_worker_claim_latency_seconds"
        public static let claimRacesLost = "dgrid_worker_claim_races_lost_total"
        public static let gitOperations = "dgrid_worker_git_operations_total"
        public static let gitDuration = "dgrid_worker_git_operation_duration_seconds"
        public static let gitConsecutiveFailures = "dgrid_worker_git_consecutive_failures"
        /// The Git backend's `GitCircuitBreaker`, as the heartbeat loop last saw it.
        public static let circuitState = "dgrid_worker_circuit_state"
        public static let healthy = "dgrid_worker_healthy"
        public static let healthReason = "dgrid_worker_health_reason"
        public static let signatureRefusals = "dgrid_worker_signature_refusals_total"
        public static let quotaRefusals = "dgrid_worker_quota_refusals_total"
        public static let quotaDeferrals = "dgrid_worker_quota_deferrals_total"
        public static let webhookEvents = "dgrid_worker_webhook_events_total"
        public static let webhookAttempts = "dgrid_worker_webhook_attempts_total"
    }

    /// Histogram buckets per timer, in seconds: tasks run seconds to a day, claims and Git steps milliseconds to a minute.
    public static let durationBuckets: [String: [Double]] = [
        Name.taskDuration: [0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1_800, 3_600, 7_200, 21_600, 86_400],
        Name.claimLatency: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        Name.gitDuration: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    ]

    private let tasks: [TaskOutcome: CoreMetrics.Counter]
    private let durations: [TaskOutcome: CoreMetrics.Timer]
    private let slots: Gauge
    private let busy: Meter
    private let claimLatency: CoreMetrics.Timer
    private let racesLost: CoreMetrics.Counter
    private let git: [GitOperationKind: [GitOperationOutcome: CoreMetrics.Counter]]
    private let gitDurations: [GitOperationKind: CoreMetrics.Timer]
    private let consecutiveFailures: Gauge
    private let failureStreak = Atomic<Int>(0)
    private let circuitStates: [CircuitState: Gauge]
    private let healthy: Gauge
    private let healthReasons: [HealthReason: Gauge]
    private let signatureRefusals: CoreMetrics.Counter
    private let quotaRefusals: CoreMetrics.Counter
    private let quotaDeferrals: CoreMetrics.Counter
    private let webhookEvents: [WebhookResult: CoreMetrics.Counter]
    private let webhookAttempts: [WebhookAttemptResult: CoreMetrics.Counter]

    /// `factory`: where the series go; the default records nothing.
    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance, nodeID: String, version: String, slots: Int) {
        func each<Key: Hashable & CaseIterable, Value>(_ keys: Key.Type, _ make: (Key) -> Value) -> [Key: Value] {
            Dictionary(uniqueKeysWithValues: Key.allCases.map { ($0, make($0)) })
        }
        Gauge(label: Name.info, dimensions: [("node_id", nodeID), ("version", version)], factory: factory).record(1)
        tasks = each(TaskOutcome.self) { CoreMetrics.Counter(label: Name.tasks, dimensions: [("outcome", $0.rawValue)], factory: factory) }
        durations = Dictionary(uniqueKeysWithValues: TaskOutcome.ran.map {
            ($0, CoreMetrics.Timer(label: Name.taskDuration, dimensions: [("outcome", $0.rawValue)], factory: factory))
        })
        self.slots = Gauge(label: Name.slots, factory: factory)
        busy = Meter(label: Name.slotsBusy, factory: factory)
        claimLatency = CoreMetrics.Timer(label: Name.claimLatency, factory: factory)
        racesLost = CoreMetrics.Counter(label: Name.claimRacesLost, factory: factory)
        git = each(GitOperationKind.self) { kind in
            each(GitOperationOutcome.self) { outcome in
                CoreMetrics.Counter(label: Name.gitOperations, dimensions: [("operation", kind.rawValue), ("result", outcome.rawValue)], factory: factory)
            }
        }
        gitDurations = each(GitOperationKind.self) { CoreMetrics.Timer(label: Name.gitDuration, dimensions: [("operation", $0.rawValue)], factory: factory) }
        consecutiveFailures = Gauge(label: Name.gitConsecutiveFailures, dimensions: [("backend", "git")], factory: factory)
        circuitStates = each(CircuitState.self) { Gauge(label: Name.circuitState, dimensions: [("backend", "git"), ("state", $0.rawValue)], factory: factory) }
        healthy = Gauge(label: Name.healthy, factory: factory)
        healthReasons = each(HealthReason.self) { Gauge(label: Name.healthReason, dimensions: [("reason", $0.rawValue)], factory: factory) }
        signatureRefusals = CoreMetrics.Counter(label: Name.signatureRefusals, factory: factory)
        quotaRefusals = CoreMetrics.Counter(label: Name.quotaRefusals, factory: factory)
        quotaDeferrals = CoreMetrics.Counter(label: Name.quotaDeferrals, factory: factory)
        webhookEvents = each(WebhookResult.self) { CoreMetrics.Counter(label: Name.webhookEvents, dimensions: [("result", $0.rawValue)], factory: factory) }
        webhookAttempts = each(WebhookAttemptResult.self) {
            CoreMetrics.Counter(label: Name.webhookAttempts, dimensions: [("result", $0.rawValue)], factory: factory)
        }
        self.slots.record(Double(slots))
        busy.set(0)
        consecutiveFailures.record(0)
        circuit(.closed)
        health(nil)
    }

    /// A task ended this way; `seconds` is how long its sandbox ran (tasks that ran only).
    public func taskEnded(_ outcome: TaskOutcome, seconds: Double? = nil) {
        tasks[outcome]?.increment()
        if let seconds, let timer = durations[outcome] { timer.recordNanoseconds(Int64((max(0, seconds) * 1e9).rounded())) }
    }

    public func slotBusy() { busy.increment() }
    public func slotFree() { busy.decrement() }

    /// From the start of a pick to the won claim.
    public func claimed(afterMilliseconds milliseconds: Int, racesLost lost: Int) {
        claimLatency.recordNanoseconds(Int64(max(0, milliseconds)) * 1_000_000)
        if lost > 0 { racesLost.increment(by: Int64(lost)) }
    }

    /// One listing, fetch or push of the grid's ledger ended (`GitLedger`'s observer).
    public func gitOperation(_ kind: GitOperationKind, _ outcome: GitOperationOutcome, seconds: Double) {
        git[kind]?[outcome]?.increment()
        gitDurations[kind]?.recordNanoseconds(Int64((max(0, seconds) * 1e9).rounded()))
        // A ref the remote refused to move is an answer, not a failure of the backend.
        let streak = outcome == .failure ? failureStreak.add(1, ordering: .relaxed).newValue : { failureStreak.store(0, ordering: .relaxed); return 0 }()
        consecutiveFailures.record(Double(streak))
    }

    /// The ledger's observer, for `GridSettings.gitObserver`.
    public var gitObserver: GitOperationObserver {
        { [self] kind, outcome, seconds in gitOperation(kind, outcome, seconds: seconds) }
    }

    /// The circuit around the Git backend: exactly one state is 1.
    public func circuit(_ state: CircuitState) {
        for (each, gauge) in circuitStates { gauge.record(each == state ? 1 : 0) }
    }

    /// Healthy (nil) or why not: exactly one reason is 1 (`none` when healthy).
    public func health(_ reason: HealthReason?) {
        healthy.record(reason == nil ? 1 : 0)
        let current = reason ?? HealthReason.none
        for (each, gauge) in healthReasons { gauge.record(each == current ? 1 : 0) }
    }

    /// What the audit log records counts here too: refusals by signature and by quota.
    public func audited(_ kind: AuditEvent.Kind) {
        switch kind {
        case .signatureRefused: signatureRefusals.increment()
        case .quotaRefused: quotaRefusals.increment()
        case .quotaDeferred: quotaDeferrals.increment()
        default: break
        }
    }

    public func webhook(_ result: WebhookResult) { webhookEvents[result]?.increment() }
    public func webhookAttempt(_ result: WebhookAttemptResult) { webhookAttempts[result]?.increment() }
}

/// How a claimed task ended for this worker, as `dgrid_worker_tasks_total` counts it.
public enum TaskOutcome: String, Sendable, CaseIterable {
    case completed, failed, rejected, skipped
    /// Given back for a host fault (docs/ARCHITECTURE.md §7).
    case givenBack = "given_back"
    /// Ran, but its result could not be published (another worker had, or the remote refused to the end).
    case unpublished

    /// Outcomes of a task whose sandbox ran: those get a duration.
    static let ran: [TaskOutcome] = [.completed, .failed]

    init(_ status: ResultStatus) {
        switch status {
        case .completed: self = .completed
        case .failed: self = .failed
        case .rejected: self = .rejected
        case .skipped: self = .skipped
        }
    }
}

/// The metric's states are the breaker's own (`GitCircuitBreaker`).
public typealias CircuitState = GitCircuitBreaker.State

/// Why a worker is unhealthy, bounded to the self-checks it has (`HealthCheck`).
public enum HealthReason: String, Sendable, CaseIterable {
    case none, image, sandbox, seccomp
    case artifactRegistry = "artifact_registry"
    /// The periodic self-check (space, inodes, memory, cgroup, the default image).
    case selfCheck = "self_check"

    init(_ check: HealthCheck) {
        switch check {
        case .image: self = .image
        case .sandbox: self = .sandbox
        case .seccomp: self = .seccomp
        case .artifactRegistry: self = .artifactRegistry
        case .periodic: self = .selfCheck
        }
    }
}

/// What became of a webhook event: delivered, given up on after its retries, or dropped from a full queue.
public enum WebhookResult: String, Sendable, CaseIterable {
    case delivered, failed, dropped
}

/// One POST of an event: answered 2xx, answered otherwise, or no answer (refused, timed out).
public enum WebhookAttemptResult: String, Sendable, CaseIterable {
    case success
    case httpError = "http_error"
    case noAnswer = "no_answer"
}
