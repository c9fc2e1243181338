import Foundation
import Logging

/// Delivers webhook events on a thread of its own (docs/ARCHITECTURE.md §12),
/// so nothing that reports an event — a slot, the heartbeat, `--watch` — ever
/// waits on a receiver: `send` appends to a bounded queue under a lock and
/// returns. When the queue is full the oldest waiting event is dropped and
/// counted (`dgrid_worker_webhook_events_total{result="dropped"}`): the newest
/// say most about now. Each event is signed once (its body never changes
/// between attempts) and tried per `WebhookRetryPolicy`; one event at a time,
/// in order.
public final class WebhookDispatcher: @unchecked Sendable {
    public let url: WebhookURL
    private let secret: WebhookSecret
    private let transport: any WebhookTransport
    private let policy: WebhookRetryPolicy
    private let capacity: Int
    private let metrics: WorkerMetrics?
    private let logger: Logger
    private let userAgent: String
    /// Uniform in 0..<1, for the jitter; tests pass a fixed one.
    private let random: @Sendable () -> Double

    /// Guards everything below.
    private let condition = NSCondition()
    private var queue: [WebhookEvent] = []
    private var busy = false
    private var stopping = false
    private var started = false
    private var totals = Totals()

    public struct Totals: Sendable, Equatable {
        public var delivered = 0, failed = 0, dropped = 0, attempts = 0
    }

    /// Events waiting beyond the one being delivered.
    public static let defaultCapacity = 256

    public init(url: WebhookURL, secret: WebhookSecret, transport: any WebhookTransport = HelperWebhookTransport(),
                policy: WebhookRetryPolicy = WebhookRetryPolicy(), capacity: Int = WebhookDispatcher.defaultCapacity,
                metrics: WorkerMetrics? = nil, logger: Logger = Logger(label: "dgrid.webhook"),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.url = url
        self.secret = secret
        self.transport = transport
        self.policy = policy
        self.capacity = max(1, capacity)
        self.metrics = metrics
        self.logger = logger
        self.random = random
        userAgent = "dgrid/\(RunnerInfo.workerVersion)"
    }

    /// Starts the delivery thread (once).
    public func start() {
        let first = condition.withLock { () -> Bool in
            defer { started = true }
            return !started
        }
        guard first else { return }
        let thread = Thread { [self] in deliveryLoop() }
        thread.name = "dgrid-webhook"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Queues `event`; never waits on delivery. A full queue drops its oldest.
    public func send(_ event: WebhookEvent) {
        let droppedEvent = condition.withLock { () -> WebhookEvent? in
            guard !stopping else { return nil }
            var dropped: WebhookEvent?
            if queue.count >= capacity {
                dropped = queue.removeFirst()
                totals.dropped += 1
            }
            queue.append(event)
            condition.broadcast()
            return dropped
        }
        if let droppedEvent {
            metrics?.webhook(.dropped)
            logger.warning("webhook queue full: oldest event dropped", metadata: ["event": "\(droppedEvent.id)", "type": "\(droppedEvent.kind.rawValue)",
                                                                                  "capacity": "\(capacity)"])
        }
    }

    /// Waits until every queued event is delivered or given up, at most `timeoutSeconds`; whether it got there.
    @discardableResult
    public func flush(timeoutSeconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        return condition.withLock {
            while !queue.isEmpty || busy {
                guard condition.wait(until: deadline) else { return queue.isEmpty && !busy }
            }
            return true
        }
    }

    /// No more events are taken; the one being delivered stops at its next wait.
    public func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
    }

    public var totalsSoFar: Totals { condition.withLock { totals } }

    private func deliveryLoop() {
        while true {
            let next = condition.withLock { () -> WebhookEvent? in
                while queue.isEmpty && !stopping { condition.wait() }
                guard !stopping, !queue.isEmpty else { return nil }
                busy = true
                return queue.removeFirst()
            }
            guard let event = next else { return }
            let delivered = deliver(event)
            condition.withLock {
                busy = false
                if delivered { totals.delivered += 1 } else { totals.failed += 1 }
                condition.broadcast()
            }
            metrics?.webhook(delivered ? .delivered : .failed)
        }
    }

    /// The headers of one attempt. The signature covers the body, which holds the id and the time.
    func headers(for event: WebhookEvent, body: [UInt8], signature: String) -> [(String, String)] {
        [("Content-Type", "application/json"), ("User-Agent", userAgent),
         (WebhookSignature.header, signature), (WebhookSignature.eventHeader, event.kind.rawValue),
         (WebhookSignature.idHeader, event.id), (WebhookSignature.timestampHeader, "\(Int(event.time.timeIntervalSince1970))")]
    }

    /// Tries `event` until an answer settles it, the attempts or the time run out, or `stop()`.
    private func deliver(_ event: WebhookEvent) -> Bool {
        let body = event.body
        let headers = headers(for: event, body: body, signature: WebhookSignature.value(body: body, secret: secret))
        let first = Date()
        var attempt = 1
        while true {
            let answer = transport.post(url, headers: headers, body: body, timeoutSeconds: policy.attemptTimeoutSeconds)
            condition.withLock { totals.attempts += 1 }
            let why: String
            switch answer {
            case .status(let status) where (200..<300).contains(status):
                metrics?.webhookAttempt(.success)
                if attempt > 1 { logger.info("webhook delivered after retries", metadata: ["event": "\(event.id)", "attempts": "\(attempt)"]) }
                return true
            case .status(let status):
                metrics?.webhookAttempt(.httpError)
                guard WebhookRetryPolicy.isRetryable(status: status) else {
                    logger.warning("webhook refused by the receiver; not retried", metadata: ["event": "\(event.id)", "type": "\(event.kind.rawValue)",
                                                                                              "status": "\(status)", "url": "\(url.origin)"])
                    return false
                }
                why = "status \(status)"
            case .noAnswer(let reason):
                metrics?.webhookAttempt(.noAnswer)
                why = reason
            }
            let wait = policy.delay(afterAttempt: attempt, unit: random())
            let next = Date().addingTimeInterval(wait)
            guard attempt < policy.maxAttempts, next.timeIntervalSince(first) <= policy.totalSeconds else {
                logger.warning("webhook event given up", metadata: ["event": "\(event.id)", "type": "\(event.kind.rawValue)", "attempts": "\(attempt)",
                                                                    "last": "\(why)", "url": "\(url.origin)"])
                return false
            }
            logger.debug("webhook attempt failed; retrying", metadata: ["event": "\(event.id)", "attempt": "\(attempt)", "error": "\(why)",
                                                                       "retry_in_s": "\(String(format: "%.2f", wait))"])
            let stopped = condition.withLock { () -> Bool in
                while !stopping { guard condition.wait(until: next) else { break } }
                return stopping
            }
            if stopped { return false }
            attempt += 1
        }
    }
}
