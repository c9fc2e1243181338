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
    func observed<T>(_ kind: GitOperationKind, outcome: (T) -> GitOperationOutcome = { _ in .success },
                     _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        guard let observer else { return try body() }
        let start = Clock.monotonicNanoseconds()
        func seconds() -> Double { Double(Clock.monotonicNanoseconds() - start) / 1e9 }
        do throws(LedgerError) {
            let result = try body()
            observer(kind, outcome(result), seconds())
            return result
        } catch {
            observer(kind, .failure, seconds())
            throw error
        }
    }
}
