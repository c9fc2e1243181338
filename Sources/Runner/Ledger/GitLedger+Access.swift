import CGit2
#if canImport(Glibc)
import Glibc
#endif

extension GitLedger {
    /// Whether this host may push to the remote, without pushing anything
    /// (`dgrid doctor`, docs/ARCHITECTURE.md §12): over git://, http(s):// and ssh://
    /// a push connection is opened and closed — the server's receive-pack
    /// answers with its ref advertisement, which it gives only to those it
    /// lets push (git daemon without `--enable=receive-pack`, a read-only
    /// token or key are refused here) — and nothing is sent. A local
    /// repository is written directly (`GitLedger+LocalRefs.swift`), so its
    /// `refs` and `objects` directories must be writable by this user.
    public func checkPushAccess() throws(LedgerError) {
        if case .local(let path) = location {
            for directory in ["refs", "objects"] where access(path + "/" + directory, W_OK) != 0 {
                let code = errno
                throw LedgerError(.authentication, operation: "check push access", remote: remoteForErrors,
                                  message: "\(path)/\(directory) is not writable by uid \(geteuid()): \(String(cString: strerror(code)))",
                                  hint: "give this user write access to the repository, or run the worker as its owner",
                                  secrets: credentials.secrets)
            }
            return
        }
        try lock.run { () throws(LedgerError) in
            try withConnection(GIT_DIRECTION_PUSH, operation: "open a push connection") { (_, _) throws(LedgerError) in }
        }
    }
}
