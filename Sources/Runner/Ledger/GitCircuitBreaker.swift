import Foundation
import Synchronization

/// A circuit breaker around one Git backend (docs/ARCHITECTURE.md §12, "Health"):
/// after `threshold` consecutive network failures it opens, and every Git network
/// operation of the worker — slots, heartbeat, checkpoints share one breaker per
/// backend — fails at once, without a connection, until a probe is due. The
/// first operation after that is the probe (half-open): success closes the
/// circuit, failure opens it again for twice as long (jittered, capped). A host
/// whose Git server is down then costs that server one probe per backoff, not
/// one connection per slot per poll, and the worker's errors say why at once.
public final class GitCircuitBreaker: Sendable {
    public enum State: String, Sendable, Equatable, CaseIterable {
        case closed, open
        case halfOpen = "half_open"
    }

    /// What status and metrics show.
    public struct Snapshot: Sendable, Equatable {
        public var state: State
        public var consecutiveFailures: Int
        /// Times the circuit opened since the worker started.
        public var opened: Int
        public var lastError: String?
    }

    private struct Inner {
        var state: State = .closed
        var failures = 0
        var opened = 0
        /// Consecutive opens without a success between them: the backoff's exponent.
        var streak = 0
        var probeAt = Date.distantPast
        var lastError: String?
    }

    public let threshold: Int
    public let baseSeconds: Double
    public let ceilingSeconds: Double
    private let inner = Mutex(Inner())

    public init(threshold: Int = 5, baseSeconds: Double = 2, ceilingSeconds: Double = 120) {
        self.threshold = max(1, threshold)
        self.baseSeconds = baseSeconds
        self.ceilingSeconds = max(baseSeconds, ceilingSeconds)
    }

    /// Why an operation may not run now; nil when it may (closed, or this call is the probe).
    func refusal(now: Date = Date()) -> String? {
        inner.withLock { inner in
            switch inner.state {
            case .closed:
                return nil
            case .halfOpen:
                return "a probe of the Git server is in flight after \(inner.failures) consecutive failures"
            case .open:
                guard now >= inner.probeAt else {
                    let wait = inner.probeAt.timeIntervalSince(now)
                    return "the circuit to the Git server is open after \(inner.failures) consecutive failures "
                        + "(last: \(inner.lastError ?? "unknown")); next probe in \(String(format: "%.0f", wait.rounded(.up))) s"
                }
                inner.state = .halfOpen
                return nil
            }
        }
    }

    /// Whether an operation would be let through now (closed, or open with its probe due),
    /// without taking the probe: how the connection picks the backend to use.
    func admits(now: Date = Date()) -> Bool {
        inner.withLock { inner in
            switch inner.state {
            case .closed: true
            case .halfOpen: false
            case .open: now >= inner.probeAt
            }
        }
    }

    func succeeded() {
        inner.withLock { inner in
            inner.state = .closed
            inner.failures = 0
            inner.streak = 0
        }
    }

    /// A network failure; returns true when it opened the circuit. `decisive`: one failure that
    /// says the remote is out on its own (a server that accepted the connection and never
    /// answered, with a backup to move to) opens the circuit without waiting for a streak.
    @discardableResult
    func failed(_ message: String, decisive: Bool = false, now: Date = Date()) -> Bool {
        inner.withLock { inner in
            inner.failures = decisive ? max(inner.failures + 1, threshold) : inner.failures + 1
            inner.lastError = String(message.prefix(200))
            guard inner.state == .halfOpen || inner.failures >= threshold else { return false }
            inner.state = .open
            inner.opened += 1
            inner.streak += 1
            let backoff = min(ceilingSeconds, baseSeconds * pow(2, Double(min(inner.streak - 1, 30))))
            inner.probeAt = now.addingTimeInterval(backoff * Double.random(in: 0.8...1.2))
            return true
        }
    }

    public func snapshot() -> Snapshot {
        inner.withLock { inner in
            Snapshot(state: inner.state, consecutiveFailures: inner.failures, opened: inner.opened, lastError: inner.lastError)
        }
    }
}
