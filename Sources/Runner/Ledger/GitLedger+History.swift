import CGit2

/// What compaction needs from the mirror (docs/ARCHITECTURE.md §10): how long a
/// history is, and a root commit holding another commit's tree.
extension GitLedger {
    /// Commits reachable from `tip`, counted up to `limit` (the walk stops there:
    /// "is main at least N commits deep" never walks a year of history).
    public func commitCount(from tip: GitOID, limit: Int) throws(LedgerError) -> Int {
        let operation = "count the commits of \(tip)"
        return try lock.run { () throws(LedgerError) -> Int in
            var walk: OpaquePointer?
            var code = git_revwalk_new(&walk, repository.pointer)
            guard code == 0, let walk else { throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory") }
            defer { git_revwalk_free(walk) }
            var oid = tip.raw
            code = git_revwalk_push(walk, &oid)
            guard code == 0 else { throw failure(code, kind: .object, operation: operation, hint: "fetch main first") }
            var count = 0
            var next = git_oid()
            while count < limit {
                code = git_revwalk_next(&next, walk)
                if code == GIT_ITEROVER.rawValue { break }
                guard code == 0 else { throw failure(code, kind: .object, operation: operation, hint: "the mirror lacks part of main's history; fetch it again") }
                count += 1
            }
            return count
        }
    }

    /// A commit with no parent and `commit`'s tree: main started anew with the same files.
    public func rootCommit(withTreeOf commit: GitOID, message: String,
                           author: LedgerSignature = .dgrid) throws(LedgerError) -> GitOID {
        let operation = "root commit with the tree of \(commit)"
        return try lock.run { () throws(LedgerError) -> GitOID in
            let tree = try commitTree(commit, operation: operation)
            var signature: UnsafeMutablePointer<git_signature>?
            var code = git_signature_now(&signature, author.name, author.email)
            guard code == 0, let signature else {
                throw failure(code, kind: .invalidInput, operation: operation, hint: "the author name and email must not contain '<', '>' or newlines")
            }
            defer { git_signature_free(signature) }
            var id = git_oid()
            code = git_commit_create(&id, repository.pointer, nil, signature, signature, nil, message, tree.pointer, 0, nil)
            guard code == 0 else { throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory (disk full?)") }
            return GitOID(raw: id)
        }
    }
}
