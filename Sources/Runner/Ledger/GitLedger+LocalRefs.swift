import CGit2
import Glibc

/// Ref moves on a repository on this machine (file:// or a path). libgit2 1.5's
/// local transport force-updates any ref that existed when it connected, so two
/// racing pushers would both "win" (docs/ARCHITECTURE.md §6). Instead the ledger opens the remote
/// repository itself, copies the missing objects in, and moves the ref with
/// libgit2's compare-and-swap, which compares the old value under the ref's lock file.
extension GitLedger {
    /// `remote`: the remote repository, opened once per batch (`openLocalRemote`).
    func localMove(_ name: String, from old: GitOID?, to new: GitOID?, remote: GitHandle,
                   operation: String) throws(LedgerError) -> RefUpdate {
        if let new {
            try copyObjects(reachableFrom: new, into: remote, operation: operation)
            var newOID = new.raw
            // old nil → expect the zero id: refdb_fs then accepts only a missing ref,
            // checked under the lock (force=0 alone checks existence before taking
            // the lock, so two creators could both succeed).
            var expected = (old ?? .zero).raw
            var reference: OpaquePointer?
            let code = git_reference_create_matching(&reference, remote.pointer, name, &newOID, 1, &expected,
                                                     "dgrid: \(operation)")
            git_reference_free(reference)
            return try refOutcome(code, name: name, expected: old, remote: remote, operation: operation)
        }
        guard let old else { return .rejected(reason: "nothing to do") }
        var reference: OpaquePointer?
        var code = git_reference_lookup(&reference, remote.pointer, name)
        if code == GIT_ENOTFOUND.rawValue { return .rejected(reason: "\(name) does not exist") }
        guard code == 0, let reference else {
            throw failure(code, kind: .network, operation: operation, hint: "check the remote repository")
        }
        defer { git_reference_free(reference) }
        guard let target = git_reference_target(reference) else {
            return .rejected(reason: "\(name) is a symbolic ref")
        }
        let actual = GitOID(raw: target.pointee)
        guard actual == old else {
            return .rejected(reason: Self.mismatch(name, expected: old, actual: actual))
        }
        // git_reference_delete passes the value just read as the expected old value;
        // the backend compares it again under the lock, so a move in between is refused.
        code = git_reference_delete(reference)
        return try refOutcome(code, name: name, expected: old, remote: remote, operation: operation)
    }

    /// Maps a CAS result: the refusals that mean "someone else moved first".
    private func refOutcome(_ code: Int32, name: String, expected: GitOID?, remote: GitHandle,
                            operation: String) throws(LedgerError) -> RefUpdate {
        switch code {
        case 0:
            return .applied
        case GIT_EMODIFIED.rawValue, GIT_EEXISTS.rawValue, GIT_ENOTFOUND.rawValue:
            var actual = git_oid()
            let now = git_reference_name_to_id(&actual, remote.pointer, name) == 0 ? GitOID(raw: actual) : nil
            return .rejected(reason: Self.mismatch(name, expected: expected, actual: now))
        case GIT_ELOCKED.rawValue:
            // Another writer holds the ref's lock right now; whichever of us it is,
            // only one can win, and it is not us. A lock left by a writer killed
            // between lock and rename would block the ref forever (main: no fold,
            // no submit): one older than a live update could take is removed, and
            // the caller's next round succeeds.
            if let base = git_repository_path(remote.pointer).map({ String(cString: $0) }) {
                for lock in [base + name + ".lock", base + "packed-refs.lock"] where Self.removeIfStale(lock) {
                    return .rejected(reason: "removed a stale lock \(lock) left by a crashed writer; retry")
                }
            }
            return .rejected(reason: "\(name) is being updated by someone else")
        default:
            throw failure(code, kind: .network, operation: operation, hint: "check the remote repository")
        }
    }

    /// Seconds after which a ref lock in a local grid counts as abandoned: a live
    /// update holds it for milliseconds.
    static let staleLockSeconds = 30

    /// Unlinks `path` when it is a regular file last modified over `staleLockSeconds` ago.
    static func removeIfStale(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        guard time(nil) - info.st_mtim.tv_sec > staleLockSeconds else { return false }
        return unlink(path) == 0
    }

    func openLocalRemote(_ path: String, operation: String) throws(LedgerError) -> GitHandle {
        var repository: OpaquePointer?
        // NO_SEARCH: the path must be the repository, never a parent found by walking up.
        let code = git_repository_open_ext(&repository, path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil)
        guard code == 0, let repository else {
            throw failure(code, kind: .invalidRemote, operation: operation,
                          hint: "the remote path must be a Git repository (create it with: git init --bare)")
        }
        return GitHandle(repository) { git_repository_free($0) }
    }

    /// Copies every object reachable from `commit` that `remote` lacks, children
    /// before parents: an object present there then always has its whole closure,
    /// even after a crash half way, so the walk stops at the first object it finds.
    private func copyObjects(reachableFrom commit: GitOID, into remote: GitHandle,
                             operation: String) throws(LedgerError) {
        let source = try objectDatabase(repository, operation: operation)
        let target = try objectDatabase(remote, operation: operation)
        var done = Set<GitOID>()
        // (object, children already queued)
        var pending: [(GitOID, Bool)] = [(commit, false)]
        while let (id, expanded) = pending.popLast() {
            if done.contains(id) { continue }
            var oid = id.raw
            if !expanded {
                if git_odb_exists(target.pointer, &oid) != 0 {
                    done.insert(id)
                    continue
                }
                pending.append((id, true))
                for child in try children(of: id, operation: operation) where !done.contains(child) {
                    pending.append((child, false))
                }
                continue
            }
            var object: OpaquePointer?
            var code = git_odb_read(&object, source.pointer, &oid)
            guard code == 0, let object else {
                throw failure(code, kind: .object, operation: "\(operation): read \(id)",
                              hint: "the mirror is missing objects; fetch again")
            }
            defer { git_odb_object_free(object) }
            var written = git_oid()
            code = git_odb_write(&written, target.pointer, git_odb_object_data(object), git_odb_object_size(object),
                                 git_odb_object_type(object))
            if code < 0 {
                throw failure(code, kind: .network, operation: "\(operation): write \(id)",
                              hint: "check that the remote repository is writable")
            }
            done.insert(id)
        }
    }

    /// The objects a commit or tree refers to (submodule commits excluded: they live elsewhere).
    private func children(of id: GitOID, operation: String) throws(LedgerError) -> [GitOID] {
        var oid = id.raw
        var object: OpaquePointer?
        let code = git_object_lookup(&object, repository.pointer, &oid, GIT_OBJECT_ANY)
        guard code == 0, let object else {
            throw failure(code, kind: .object, operation: "\(operation): read \(id)",
                          hint: "the mirror is missing objects; fetch again")
        }
        defer { git_object_free(object) }
        switch git_object_type(object) {
        case GIT_OBJECT_COMMIT:
            var result = [GitOID(raw: git_commit_tree_id(object).pointee)]
            for index in 0..<git_commit_parentcount(object) {
                if let parent = git_commit_parent_id(object, index) { result.append(GitOID(raw: parent.pointee)) }
            }
            return result
        case GIT_OBJECT_TREE:
            var result: [GitOID] = []
            for index in 0..<git_tree_entrycount(object) {
                guard let entry = git_tree_entry_byindex(object, index),
                      git_tree_entry_type(entry) != GIT_OBJECT_COMMIT,
                      let entryID = git_tree_entry_id(entry) else { continue }
                result.append(GitOID(raw: entryID.pointee))
            }
            return result
        default:
            return []
        }
    }

    private func objectDatabase(_ repository: GitHandle, operation: String) throws(LedgerError) -> GitHandle {
        var odb: OpaquePointer?
        let code = git_repository_odb(&odb, repository.pointer)
        guard code == 0, let odb else {
            throw failure(code, kind: .mirror, operation: operation, hint: "check the repository directory")
        }
        return GitHandle(odb) { git_odb_free($0) }
    }
}
