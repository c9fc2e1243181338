import CGit2

/// The three ref moves the claim protocol is built on. None is ever forced: each
/// names the value it expects the remote ref to hold, and the remote (or, for a
/// local repository, its ref lock) decides. `.rejected` means someone else moved
/// first; a thrown error means we could not find out.
extension GitLedger {
    /// Creates `name` on the remote pointing at `target` (pushing the objects). Exclusive: `.rejected` when the ref already exists remotely. Never forced.
    public func createRef(_ name: String, target: GitOID) throws(LedgerError) -> RefUpdate {
        try move(name, from: nil, to: target, operation: "create \(name) at \(target)")
    }

    /// Moves `name` on the remote from `old` to `new` only if it still is `old` (compare-and-swap); `.rejected` otherwise. Never forced.
    ///
    /// `new` must be `old` or a descendant of it (leases are renewed by fast-forward,
    /// DESIGN §6); anything else is `.rejected` on every transport, because libgit2's
    /// smart push refuses non-fast-forwards without force.
    public func updateRef(_ name: String, from old: GitOID, to new: GitOID) throws(LedgerError) -> RefUpdate {
        try move(name, from: old, to: new, operation: "update \(name) from \(old) to \(new)")
    }

    /// Deletes `name` on the remote only if it still points at `expected`.
    public func deleteRef(_ name: String, expected: GitOID) throws(LedgerError) -> RefUpdate {
        try move(name, from: expected, to: nil, operation: "delete \(name) at \(expected)")
    }

    /// `old` nil: the ref must not exist. `new` nil: delete.
    private func move(_ name: String, from old: GitOID?, to new: GitOID?,
                      operation: String) throws(LedgerError) -> RefUpdate {
        try validateRefName(name, operation: operation)
        return try lock.run { () throws(LedgerError) -> RefUpdate in
            try repairingMirror { () throws(LedgerError) -> RefUpdate in
                if let new {
                    _ = try lookupCommit(new, operation: operation)
                    if let old, old != new, try !isDescendant(new, of: old, operation: operation) {
                        return .rejected(reason: "\(new) is not a fast-forward of \(old)")
                    }
                }
                switch location {
                case .local(let path):
                    return try localMove(name, from: old, to: new, remotePath: path, operation: operation)
                case .smart:
                    return try smartPush(name, from: old, to: new, operation: operation)
                }
            }
        }
    }

    private func isDescendant(_ new: GitOID, of old: GitOID, operation: String) throws(LedgerError) -> Bool {
        var newOID = new.raw, oldOID = old.raw
        let code = git_graph_descendant_of(repository.pointer, &newOID, &oldOID)
        if code < 0 {
            throw failure(code, kind: .object, operation: operation,
                          hint: "\(old) is not in the mirror; fetch the ref before moving it")
        }
        return code == 1
    }
}
