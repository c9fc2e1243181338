import CGit2
import CGitStream

/// Every network operation of the ledger runs under an overall deadline
/// (`GitDeadlines`), enforced where each transport can be stopped:
/// - git:// and http(s)://: dgrid's socket stream (git_stream.c) fails the
///   read, write or connect that would run past it;
/// - ssh://: libssh2 reads the socket itself, so the stream's watchdog shuts
///   the socket down at the deadline and libssh2's next read fails;
/// - every transport, file:// included: libgit2's progress callbacks
///   (`RemoteCallbackState`) abort a transfer once the deadline has passed.
/// A local repository on a hung filesystem blocks in the kernel, where no
/// user-space deadline reaches; that is the one operation left unbounded.
extension GitLedger {
    /// Runs `body` (a network operation of `kind`) under its deadline. Nested
    /// calls — a push's own listing, a retry of a listing — run under the
    /// outermost one, so the bound is on the whole operation, not each step.
    func withDeadline<T>(_ kind: GitOperationKind, operation: String,
                         _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        guard dgrid_git_deadline_active() == 0 else { return try body() }
        guard let circuit else { return try deadlined(kind, operation: operation, body) }
        if let why = circuit.refusal() {
            throw LedgerError(.network, operation: operation, remote: remoteForErrors, message: why,
                              hint: "the worker retries by itself; check that the Git server is up and reachable from this host",
                              secrets: credentials.secrets)
        }
        do throws(LedgerError) {
            let value = try deadlined(kind, operation: operation, body)
            circuit.succeeded()
            return value
        } catch {
            // Only the remote's failures count: a refused credential or a bad ref name is not an outage.
            if error.kind == .network { circuit.failed(error.message, decisive: error.unanswered) } else { circuit.succeeded() }
            throw error
        }
    }

    private func deadlined<T>(_ kind: GitOperationKind, operation: String,
                              _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        let seconds = deadlines[kind]
        dgrid_git_deadline_begin(Int64((seconds * 1000).rounded(.up)))
        defer { dgrid_git_deadline_end() }
        // Always set (0: none): it also clears what the thread's last operation missed.
        dgrid_git_answer_within(Int64((answerSeconds * 1000).rounded(.up)))
        do throws(LedgerError) {
            return try body()
        } catch where error.kind == .network {
            throw outOfTime(error, kind: kind, operation: operation, deadline: seconds) ?? error
        }
    }

    /// `error` said as the bound it ran into — the silence bound, or the operation's deadline —
    /// with what to do; nil when it ran into neither (a refused connection, a reset).
    private func outOfTime(_ error: LedgerError, kind: GitOperationKind, operation: String, deadline: Double) -> LedgerError? {
        let unanswered = dgrid_git_answer_missed() != 0
        guard unanswered || dgrid_git_deadline_expired() != 0 else { return nil }
        let (message, hint) = unanswered
            ? ("the remote went silent for \(GitDeadlines.shown(answerSeconds)) s",
               "the Git server is stopped, wedged or cut off: the worker goes on with the grid's next backend and "
                   + "probes this one; check the server (the bound is backend_answer_seconds in worker.toml)")
            : ("gave up at the \(GitDeadlines.shown(deadline)) s deadline for a Git \(kind): the remote "
                   + "kept the connection open without finishing",
               "the remote or the network is stalling or very slow: check the Git server; if it is only slow, "
                   + "raise the \(kind) deadline (--git-deadlines \(kind)=SECONDS, or DGRID_GIT_DEADLINES)")
        return LedgerError(.network, operation: operation, remote: remoteForErrors, message: message + " (\(error.message))",
                           hint: hint, secrets: credentials.secrets, deadlineExceeded: unanswered ? nil : kind, unanswered: unanswered)
    }
}
