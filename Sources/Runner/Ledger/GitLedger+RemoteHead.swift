import CGit2

extension GitLedger {
    /// Points the remote's HEAD at `branch` when the remote is a repository on
    /// this machine and HEAD names a branch with no commits (`git init --bare`
    /// names `master`). A server's HEAD can only be moved there; for one, this
    /// reports whether the HEAD it advertises resolves to `branch`.
    public func pointHead(at branch: String) throws(LedgerError) -> RemoteHead {
        guard case .local(let path) = location else {
            let refs = try remoteRefs()
            // A server advertises HEAD only when it resolves to a commit; a HEAD
            // naming an unborn branch is left out.
            return refs["HEAD"] != nil && refs["HEAD"] == refs[branch] ? .onGridBranch : .serverNotOnGridBranch
        }
        let operation = "point HEAD at \(branch)"
        return try lock.run { () throws(LedgerError) -> RemoteHead in
            let remote = try openLocalRemote(path, operation: operation)
            var head: OpaquePointer?
            let code = git_reference_lookup(&head, remote.pointer, "HEAD")
            guard code == 0, let head else {
                throw failure(code, kind: .invalidRemote, operation: operation,
                              hint: "the repository has no readable HEAD; set it with: git -C \(path) symbolic-ref HEAD \(branch)")
            }
            defer { git_reference_free(head) }
            guard git_reference_type(head) == GIT_REFERENCE_SYMBOLIC,
                  let target = git_reference_symbolic_target(head).map({ String(cString: $0) }) else {
                // A detached HEAD was set by hand: someone's choice, like another branch.
                return .leftOnOtherBranch("a detached HEAD")
            }
            if target == branch { return .onGridBranch }
            var existing = git_oid()
            if git_reference_name_to_id(&existing, remote.pointer, target) == 0 { return .leftOnOtherBranch(target) }
            var moved: OpaquePointer?
            let set = git_reference_symbolic_create(&moved, remote.pointer, "HEAD", branch, 1, "dgrid init: the grid lives on \(branch)")
            git_reference_free(moved)
            guard set == 0 else {
                throw failure(set, kind: .invalidRemote, operation: operation,
                              hint: "set it by hand: git -C \(path) symbolic-ref HEAD \(branch)")
            }
            return .moved(from: target)
        }
    }
}
