import CGit2
import CGitStream

/// Fetching from a repository on this machine (file:// or a path) without
/// libgit2's local transport, which packs the history of every ref the remote
/// has that the mirror does not name — on a compacted grid, the whole past
/// kept under refs/dgrid-history/ on every fetch (docs/ARCHITECTURE.md §10).
/// Here, as `git pack-objects` would: a pack of what the wanted refs reach
/// minus what the mirror's own refs reach, built from the remote's object
/// database straight into the mirror's pack directory.
extension GitLedger {
    func localFetch(_ refs: [String], keepRefs: Bool, path: String, operation: String) throws(LedgerError) {
        let remote = try openLocalRemote(path, operation: operation)
        var mirrorODB: OpaquePointer?
        guard git_repository_odb(&mirrorODB, repository.pointer) == 0, let mirrorODB else {
            throw failure(-1, kind: .mirror, operation: operation, hint: "check the mirror directory")
        }
        defer { git_odb_free(mirrorODB) }
        var wanted: [(name: String, id: git_oid)] = []
        for name in refs {
            var id = git_oid()
            let code = git_reference_name_to_id(&id, remote.pointer, name)
            if code == GIT_ENOTFOUND.rawValue { continue }  // gone on the remote: the mirror keeps what it had
            guard code == 0 else { throw failure(code, kind: .network, operation: operation, hint: "check the remote repository") }
            wanted.append((name, id))
        }
        let missing = wanted.filter { var id = $0.id; return git_odb_exists(mirrorODB, &id) == 0 }
        if !missing.isEmpty {
            try packInto(mirrorODB, from: remote, wanted: missing.map(\.id), operation: operation)
        }
        guard keepRefs else { return }
        for (name, id) in wanted {
            var target = id
            var reference: OpaquePointer?
            let code = git_reference_create(&reference, repository.pointer, name, &target, 1, "dgrid: fetch")
            git_reference_free(reference)
            guard code == 0 else { throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory") }
        }
    }

    /// One pack of the objects `wanted` reach in `remote`, less those behind the mirror's refs.
    private func packInto(_ mirrorODB: OpaquePointer, from remote: GitHandle, wanted: [git_oid], operation: String) throws(LedgerError) {
        var walkPointer: OpaquePointer?
        var code = git_revwalk_new(&walkPointer, remote.pointer)
        guard code == 0, let walkPointer else { throw failure(code, kind: .network, operation: operation, hint: "check the remote repository") }
        let walk = GitHandle(walkPointer) { git_revwalk_free($0) }
        for var id in wanted {
            code = git_revwalk_push(walk.pointer, &id)
            guard code == 0 else { throw failure(code, kind: .object, operation: operation, hint: "the remote's ref names no commit: someone pushed another kind of object there") }
        }
        // What the mirror already holds whole: the commits its refs name (main's last tip, above all).
        var names = git_strarray()
        if git_reference_list(&names, repository.pointer) == 0 {
            defer { git_strarray_dispose(&names) }
            var remoteODB: OpaquePointer?
            if git_repository_odb(&remoteODB, remote.pointer) == 0, let remoteODB {
                defer { git_odb_free(remoteODB) }
                for index in 0..<names.count {
                    guard let name = names.strings[index] else { continue }
                    var id = git_oid()
                    guard git_reference_name_to_id(&id, repository.pointer, name) == 0,
                          git_odb_exists(remoteODB, &id) == 1, git_odb_exists(mirrorODB, &id) == 1 else { continue }
                    _ = git_revwalk_hide(walk.pointer, &id)
                }
            }
        }
        // No socket here for the deadline to stop (`withDeadline`): checked between
        // steps and by the packbuilder's progress callback.
        try checkDeadline(operation)
        var builderPointer: OpaquePointer?
        code = git_packbuilder_new(&builderPointer, remote.pointer)
        guard code == 0, let builderPointer else { throw failure(code, kind: .network, operation: operation, hint: "check the remote repository") }
        let builder = GitHandle(builderPointer) { git_packbuilder_free($0) }
        _ = git_packbuilder_set_threads(builder.pointer, 1)
        _ = git_packbuilder_set_callbacks(builder.pointer, { _, _, _, _ in dgrid_git_deadline_expired() != 0 ? -1 : 0 }, nil)
        code = git_packbuilder_insert_walk(builder.pointer, walk.pointer)
        try checkDeadline(operation)
        guard code == 0 else { throw failure(code, kind: .network, operation: operation, hint: "the remote repository is missing objects") }
        code = git_packbuilder_write(builder.pointer, mirrorPath + "/objects/pack", 0, nil, nil)
        try checkDeadline(operation)
        guard code == 0 else { throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory (disk full?)") }
        _ = git_odb_refresh(mirrorODB)
    }

    /// A network-kind failure once the operation's deadline has passed, which `withDeadline` reports as such.
    private func checkDeadline(_ operation: String) throws(LedgerError) {
        guard dgrid_git_deadline_expired() != 0 else { return }
        throw LedgerError(.network, operation: operation, remote: remoteForErrors, message: "the local fetch ran past its deadline",
                          hint: "the repository's filesystem is slow")
    }
}
