import CGit2

/// How two tips of main relate, for reconciling backends (docs/ARCHITECTURE.md §11, "Several
/// backends"): both commits must be in the mirror.
extension GitLedger {
    /// Whether `ancestor` is `descendant` or one of its ancestors.
    public func isAncestor(_ ancestor: GitOID, of descendant: GitOID) throws(LedgerError) -> Bool {
        if ancestor == descendant { return true }
        let operation = "is \(ancestor) an ancestor of \(descendant)"
        return try lock.run { () throws(LedgerError) -> Bool in
            _ = try lookupCommit(ancestor, operation: operation)
            _ = try lookupCommit(descendant, operation: operation)
            var child = descendant.raw, parent = ancestor.raw
            let code = git_graph_descendant_of(repository.pointer, &child, &parent)
            guard code >= 0 else { throw failure(code, kind: .object, operation: operation, hint: "fetch both tips first") }
            return code == 1
        }
    }

    /// The best common ancestor of `a` and `b`; nil when their histories share no commit
    /// (two different grids, or main compacted on one of them).
    public func mergeBase(_ a: GitOID, _ b: GitOID) throws(LedgerError) -> GitOID? {
        let operation = "merge base of \(a) and \(b)"
        return try lock.run { () throws(LedgerError) -> GitOID? in
            _ = try lookupCommit(a, operation: operation)
            _ = try lookupCommit(b, operation: operation)
            var base = git_oid(), one = a.raw, two = b.raw
            let code = git_merge_base(&base, repository.pointer, &one, &two)
            if code == GIT_ENOTFOUND.rawValue { return nil }
            guard code == 0 else { throw failure(code, kind: .object, operation: operation, hint: "fetch both tips first") }
            return GitOID(raw: base)
        }
    }

    /// Points the mirror's own `name` at `commit` (already in the mirror): after this worker
    /// moved a backend's main forward, the mirror's cache of main follows, so what it reaches
    /// is kept by the mirror's clean-ups.
    public func setMirrorRef(_ name: String, to commit: GitOID) throws(LedgerError) {
        let operation = "set the mirror's \(name)"
        try validateRefName(name, operation: operation)
        try lock.run { () throws(LedgerError) in
            _ = try lookupCommit(commit, operation: operation)
            var reference: OpaquePointer?
            var oid = commit.raw
            let code = git_reference_create(&reference, repository.pointer, name, &oid, 1, "dgrid: backend moved forward")
            guard code == 0 else { throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory") }
            git_reference_free(reference)
        }
    }
}
