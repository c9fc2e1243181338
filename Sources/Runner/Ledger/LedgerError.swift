import Sandbox

/// A ledger operation that failed: which operation, on which remote, what libgit2
/// said, and what to do about it. Every string in it has been through `Redaction`:
/// credentials never reach an error (docs/ARCHITECTURE.md §6, docs/THREATS.md "Secrets").
public struct LedgerError: Error, CustomStringConvertible {
    /// What kind of failure, for callers that react differently (e.g. retry on
    /// `.network`, give up on `.invalidInput`).
    public enum Kind: Sendable, Equatable {
        /// The remote URL or path is unusable (scheme, credentials in it, not a repository).
        case invalidRemote
        /// A caller-supplied ref name, path or argument is invalid.
        case invalidInput
        /// The local mirror could not be created or opened.
        case mirror
        /// An object is missing, of the wrong type, or larger than allowed.
        case object
        /// The remote refused our credentials, or none were available.
        case authentication
        /// Talking to the remote failed (connect, fetch, push).
        case network
        /// Reading the credentials (environment, token file) failed.
        case credentials
        /// The SSH server's host key is not in the known_hosts file, differs from the
        /// key listed there, or is revoked: refused before any credential was offered.
        case hostKey
    }

    public let kind: Kind
    /// The operation, e.g. "push refs/dgrid/claims/t1" or "read blob 1f3e…".
    public let operation: String
    /// The remote, with any user information and anything token-shaped removed.
    public let remote: String
    /// libgit2's error class (`git_error_t`) and code (`git_error_code`), when libgit2 failed.
    public let gitClass: Int32?
    public let gitCode: Int32?
    /// What failed, redacted.
    public let message: String
    /// What to do about it.
    public let hint: String
    /// Set when the operation was stopped by its overall deadline (`GitDeadlines`),
    /// not by a failure of its own; `kind` is then `.network`, so callers that retry
    /// on network failures retry this too.
    public let deadlineExceeded: GitOperationKind?
    /// Set when the remote went silent — a connect, or a wait for it to send or take bytes —
    /// for longer than the ledger's silence bound (`GitLedger.answerSeconds`): with several backends, reason enough
    /// to move to the next at once. `kind` is then `.network`.
    public let unanswered: Bool

    init(_ kind: Kind, operation: String, remote: String, message: String, hint: String,
         gitClass: Int32? = nil, gitCode: Int32? = nil, secrets: [String] = [],
         deadlineExceeded: GitOperationKind? = nil, unanswered: Bool = false) {
        self.kind = kind
        self.deadlineExceeded = deadlineExceeded
        self.unanswered = unanswered
        // libgit2's messages carry what a Git server sent (HTTP errors, push
        // statuses): made inert here, once, for every terminal and log line.
        self.operation = UntrustedText.lineSafe(Redaction.redact(operation, secrets: secrets))
        self.remote = UntrustedText.lineSafe(Redaction.redact(remote, secrets: secrets))
        self.message = UntrustedText.lineSafe(Redaction.redact(message, secrets: secrets))
        self.hint = UntrustedText.lineSafe(Redaction.redact(hint, secrets: secrets))
        self.gitClass = gitClass
        self.gitCode = gitCode
    }

    public var description: String {
        var text = "git ledger: \(operation)"
        if !remote.isEmpty { text += " on \(remote)" }
        text += " failed: \(message)"
        if let gitClass, let gitCode { text += " (libgit2 class \(gitClass), code \(gitCode))" }
        if !hint.isEmpty { text += "; \(hint)" }
        return text
    }
}
