/// Whether a task gets another attempt (docs/ARCHITECTURE.md §6, "Attempts").
///
/// Two kinds of attempt end without a result, and they are judged apart:
/// - a lease that ran out (the worker died or hung while running the task):
///   the task may be what kills workers, so these count toward `max_attempts`;
/// - a host fault (image missing there, sandbox setup failed): the worker's
///   own trouble, so one broken host must never fail a task. These count only
///   toward a separate, higher cap, and only once at least two distinct nodes
///   gave the task back — a task that breaks every host still ends.
/// Tasks given back for no fault (a stopping worker) count toward neither.
public struct AttemptBudget: Sendable, Equatable {
    public let maxAttempts: Int

    /// Host-fault releases tolerated per counted attempt.
    public static let hostFaultsPerAttempt = 3
    /// Distinct nodes whose host faults it takes to fail a task.
    public static let minimumHostFaultNodes = 2

    public init(maxAttempts: Int) {
        self.maxAttempts = max(1, maxAttempts)
    }

    public var hostFaultLimit: Int { maxAttempts * Self.hostFaultsPerAttempt }

    public enum Verdict: Equatable, Sendable {
        case run
        /// No further attempt: the reason, one line, for the failed result.
        case exhausted(String)
    }

    public func verdict(_ previous: [AttemptRecord]) -> Verdict {
        let expired = previous.filter { $0.end == .leaseExpired || $0.end == .workerRestarted }
        if expired.count >= maxAttempts {
            return .exhausted("gave up after \(expired.count) attempts that ended without a result "
                              + "(max_attempts \(maxAttempts)): each time its worker stopped renewing the lease")
        }
        let hostFaults = previous.filter { $0.end == .hostFault }
        let nodes = Set(hostFaults.map(\.nodeID))
        if hostFaults.count >= hostFaultLimit && nodes.count >= Self.minimumHostFaultNodes {
            return .exhausted("gave up after \(hostFaults.count) host faults on \(nodes.count) nodes "
                              + "(limit \(hostFaultLimit) for max_attempts \(maxAttempts)): no worker could start it")
        }
        return .run
    }
}
