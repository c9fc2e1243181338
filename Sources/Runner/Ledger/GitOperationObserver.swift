import Sandbox

/// How one ledger operation ended, for the worker's metrics (docs/ARCHITECTURE.md §12).
public enum GitOperationOutcome: String, Sendable, CaseIterable {
    case success
    /// The remote answered and refused a ref move (compare-and-swap lost, not a fast-forward):
    /// the protocol working, not the backend failing.
    case rejected
    case failure
}

/// Told of every listing, fetch and push a ledger makes — as a whole, nested steps
/// and retries inside it included — with its outcome and how long it took in seconds.
public typealias GitOperationObserver = @Sendable (GitOperationKind, GitOperationOutcome, Double) -> Void

extension GitLedger {
    /// Runs `body` (one public operation of `kind`) and tells the observer how it ended.
    /// At trace level each one is also logged with what it touched (`about`): which refs a
    /// worker lists, fetches and pushes, for a look at where a fleet's requests go
    /// (`DGRID_LOG_LEVEL=trace`, `bench/scale.sh` with `SCALE_KEEP_LOGS`).
    func observed<T>(_ kind: GitOperationKind, about: @autoclosure () -> String = "",
                     outcome: (T) -> GitOperationOutcome = { _ in .success },
                     _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        let tracing = logger.logLevel <= .trace
        guard observer != nil || tracing else { return try body() }
        let start = Clock.monotonicNanoseconds()
        func seconds() -> Double { Double(Clock.monotonicNanoseconds() - start) / 1e9 }
        func report(_ ending: GitOperationOutcome) {
            let took = seconds()
            observer?(kind, ending, took)
            if tracing {
                logger.trace("git \(kind)", metadata: ["about": "\(about())", "outcome": "\(ending.rawValue)",
                                                       "ms": "\(Int(took * 1000))"])
            }
        }
        do throws(LedgerError) {
            let result = try body()
            report(outcome(result))
            return result
        } catch {
            report(.failure)
            throw error
        }
    }
}
