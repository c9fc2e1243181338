import CGit2
#if canImport(Glibc)
import Glibc
#endif

/// Reading trees and blobs from the mirror, and writing commits into it, without a
/// working tree.
extension GitLedger {
    /// The most entries `tree(of:)` walks: a repository writer can make a tree of
    /// millions of entries to exhaust a worker's memory (docs/THREATS.md, attacker 3).
    public static let maxTreeEntries = 1_000_000

    /// path -> blob id for every blob in the commit's tree, recursively ("tasks/queue/x.json").
    ///
    /// Submodule entries are skipped. Entry names are returned as the tree holds them:
    /// callers validate them (a writer controls them).
    public func tree(of commit: GitOID) throws(LedgerError) -> [String: GitOID] {
        try listing(of: commit, keepingAsEntries: []).files
    }

    /// `tree(of:)`, except that the blobs directly in each of `folders` ("tasks/completed/",
    /// with the '/') come as the folder's entries (`FolderEntries`), not as paths.
    public func listing(of commit: GitOID, keepingAsEntries folders: Set<String>) throws(LedgerError) -> TreeListing {
        let operation = "read tree of \(commit)"
        return try lock.run { () throws(LedgerError) -> TreeListing in
            try repairingMirror { () throws(LedgerError) -> TreeListing in
                let root = try commitTree(commit, operation: operation)
                var result = TreeListing(files: [:], folders: [:])
                var visited = 0
                // Iterative, not recursive: a writer can nest trees deeper than our stack.
                var pending: [(prefix: String, tree: GitHandle)] = [("", root)]
                while let (prefix, tree) = pending.popLast() {
                    let count = git_tree_entrycount(tree.pointer)
                    visited += count
                    guard visited <= Self.maxTreeEntries else {
                        throw LedgerError(.object, operation: operation, remote: remoteForErrors,
                                          message: "the tree has more than \(Self.maxTreeEntries) entries",
                                          hint: "the repository is not a dgrid ledger, or someone flooded it")
                    }
                    let folder = prefix.isEmpty ? nil : prefix + "/"
                    // A crafted tree may name one folder twice: its entries add up, as paths would.
                    var entries = folder.flatMap { folders.contains($0) ? result.folders.removeValue(forKey: $0) ?? FolderEntries() : nil }
                    for index in 0..<count {
                        guard let entry = git_tree_entry_byindex(tree.pointer, index),
                              let cName = git_tree_entry_name(entry), let id = git_tree_entry_id(entry) else { continue }
                        switch git_tree_entry_type(entry) {
                        case GIT_OBJECT_BLOB:
                            if entries != nil {
                                entries!.append(name: UnsafeRawBufferPointer(start: cName, count: strlen(cName)), id: id.pointee)
                            } else {
                                result.files[(folder ?? "") + String(cString: cName)] = GitOID(raw: id.pointee)
                            }
                        case GIT_OBJECT_TREE:
                            let path = (folder ?? "") + String(cString: cName)
                            try checkLoose(GitOID(raw: id.pointee), operation: "\(operation): read \(path)")
                            var subtree: OpaquePointer?
                            let code = git_tree_lookup(&subtree, repository.pointer, id)
                            guard code == 0, let subtree else {
                                throw failure(code, kind: .object, operation: "\(operation): read \(path)",
                                              hint: "the mirror is missing objects; fetch the ref again")
                            }
                            pending.append((path, GitHandle(subtree) { git_tree_free($0) }))
                        default:
                            continue  // submodule (commit) entries: nothing to read
                        }
                    }
                    if let entries, let folder { result.folders[folder] = entries }
                }
                for folder in result.folders.keys { result.folders[folder]!.finish() }
                return result
            }
        }
    }

    /// A blob's bytes; refuses (error) a blob larger than `limit` before reading it.
    public func blob(_ id: GitOID, limit: Int) throws(LedgerError) -> [UInt8] {
        let operation = "read blob \(id)"
        return try lock.run { () throws(LedgerError) -> [UInt8] in
            try repairingMirror { () throws(LedgerError) -> [UInt8] in
                var odb: OpaquePointer?
                var code = git_repository_odb(&odb, repository.pointer)
                guard code == 0, let odb else {
                    throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory")
                }
                defer { git_odb_free(odb) }
                try checkLoose(id, operation: operation)
                var oid = id.raw
                var size = 0
                var type = GIT_OBJECT_ANY
                // The header alone: the size is known before a byte of content is inflated.
                code = git_odb_read_header(&size, &type, odb, &oid)
                if code < 0 {
                    throw failure(code, kind: .object, operation: operation,
                                  hint: "the object is not in the mirror; fetch the ref that holds it")
                }
                guard type == GIT_OBJECT_BLOB else {
                    throw LedgerError(.object, operation: operation, remote: remoteForErrors,
                                      message: "the object is a \(String(cString: git_object_type2string(type))), not a blob",
                                      hint: "pass the id of a file from tree(of:)")
                }
                guard size <= limit else {
                    throw LedgerError(.object, operation: operation, remote: remoteForErrors,
                                      message: "the blob is \(size) bytes, over the limit of \(limit)",
                                      hint: "a repository writer stored an oversized file; it is refused, not read")
                }
                var blob: OpaquePointer?
                code = git_blob_lookup(&blob, repository.pointer, &oid)
                guard code == 0, let blob else {
                    throw failure(code, kind: .object, operation: operation, hint: "fetch the ref that holds it again")
                }
                defer { git_blob_free(blob) }
                let length = Int(git_blob_rawsize(blob))
                guard length <= limit else {
                    throw LedgerError(.object, operation: operation, remote: remoteForErrors,
                                      message: "the blob is \(length) bytes, over the limit of \(limit)",
                                      hint: "a repository writer stored an oversized file; it is refused")
                }
                guard length > 0, let content = git_blob_rawcontent(blob) else { return [] }
                return Array(UnsafeRawBufferPointer(start: content, count: length))
            }
        }
    }

    /// Builds a commit in the mirror's object database without any working tree: the tree is `parent`'s tree with `changes` applied (create/replace/delete, creating and pruning subtrees). Author/committer "dgrid <dgrid@localhost>" unless given. parent nil = root commit.
    ///
    /// Deleting a path that is not in the tree does nothing (folds may retry). A path
    /// that would turn a file into a directory or the other way round, a path given
    /// twice, or an invalid path (`LedgerPath`) is refused before anything is written.
    ///
    /// `mergedWith`: a second parent (a merge of two backends' main, docs/ARCHITECTURE.md §11);
    /// the tree is still `parent`'s with `changes`.
    public func commit(parent: GitOID?, changes: [LedgerChange], message: String,
                       author: LedgerSignature = .dgrid, mergedWith: GitOID? = nil) throws(LedgerError) -> GitOID {
        let operation = "commit on \(parent?.hex ?? "no parent")"
        try validate(changes, message: message, author: author, operation: operation)
        return try lock.run { () throws(LedgerError) -> GitOID in
            try repairingMirror { () throws(LedgerError) -> GitOID in
                let parentCommit = try parent.map { (id) throws(LedgerError) -> GitHandle in
                    try lookupCommit(id, operation: operation)
                }
                let baseline: GitHandle
                if let parentCommit {
                    baseline = try tree(ofCommitHandle: parentCommit, operation: operation)
                } else {
                    baseline = try emptyTree(operation: operation)
                }
                let treeID = try updatedTree(baseline, changes: changes, operation: operation)
                var newTree: OpaquePointer?
                var treeOID = treeID.raw
                var code = git_tree_lookup(&newTree, repository.pointer, &treeOID)
                guard code == 0, let newTree else {
                    throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory")
                }
                defer { git_tree_free(newTree) }

                var signature: UnsafeMutablePointer<git_signature>?
                code = git_signature_now(&signature, author.name, author.email)
                guard code == 0, let signature else {
                    throw failure(code, kind: .invalidInput, operation: operation,
                                  hint: "the author name and email must not contain '<', '>' or newlines")
                }
                defer { git_signature_free(signature) }

                let secondCommit = try mergedWith.map { (id) throws(LedgerError) -> GitHandle in
                    try lookupCommit(id, operation: operation)
                }
                var parents: [OpaquePointer?] = (parentCommit.map { [$0.pointer] } ?? []) + (secondCommit.map { [$0.pointer] } ?? [])
                var commitOID = git_oid()
                code = withExtendedLifetime((parentCommit, secondCommit)) {
                    git_commit_create(&commitOID, repository.pointer, nil, signature, signature, nil, message, newTree,
                                      parents.count, &parents)
                }
                if code < 0 {
                    throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory (disk full?)")
                }
                return GitOID(raw: commitOID)
            }
        }
    }

    // MARK: - Helpers (called with the lock held)

    func lookupCommit(_ id: GitOID, operation: String) throws(LedgerError) -> GitHandle {
        try checkLoose(id, operation: operation)
        var oid = id.raw
        var commit: OpaquePointer?
        let code = git_commit_lookup(&commit, repository.pointer, &oid)
        guard code == 0, let commit else {
            throw failure(code, kind: .object, operation: operation,
                          hint: "\(id) is not a commit in the mirror; fetch the ref that holds it first")
        }
        return GitHandle(commit) { git_commit_free($0) }
    }

    func commitTree(_ id: GitOID, operation: String) throws(LedgerError) -> GitHandle {
        try tree(ofCommitHandle: try lookupCommit(id, operation: operation), operation: operation)
    }

    private func tree(ofCommitHandle commit: GitHandle, operation: String) throws(LedgerError) -> GitHandle {
        if let treeID = git_commit_tree_id(commit.pointer) { try checkLoose(GitOID(raw: treeID.pointee), operation: operation) }
        var tree: OpaquePointer?
        let code = git_commit_tree(&tree, commit.pointer)
        guard code == 0, let tree else {
            throw failure(code, kind: .object, operation: operation,
                          hint: "the mirror is missing the commit's tree; fetch the ref again")
        }
        return GitHandle(tree) { git_tree_free($0) }
    }

    private func emptyTree(operation: String) throws(LedgerError) -> GitHandle {
        var builder: OpaquePointer?
        var code = git_treebuilder_new(&builder, repository.pointer, nil)
        guard code == 0, let builder else {
            throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory")
        }
        defer { git_treebuilder_free(builder) }
        var oid = git_oid()
        code = git_treebuilder_write(&oid, builder)
        var tree: OpaquePointer?
        if code == 0 { code = git_tree_lookup(&tree, repository.pointer, &oid) }
        guard code == 0, let tree else {
            throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory")
        }
        return GitHandle(tree) { git_tree_free($0) }
    }

    /// What kind of entry each path is in one tree, with every directory read
    /// once. libgit2 caches no tree over 4 KB, so looking each path up from the
    /// root re-inflated `tasks/completed/` (a megabyte at 20,000 tasks) once per
    /// change: a fold or an archive run of N changes cost N times the folder.
    private final class EntryTypes {
        private let repository: OpaquePointer
        private var directories: [String: GitHandle?]

        init(_ root: GitHandle, repository: OpaquePointer) {
            self.repository = repository
            directories = ["": root]
        }

        /// nil when absent.
        func type(of path: String) -> git_object_t? {
            let (directory, name) = Self.split(path)
            guard let tree = self.directory(directory), let entry = git_tree_entry_byname(tree.pointer, name) else { return nil }
            return git_tree_entry_type(entry)
        }

        private func directory(_ path: String) -> GitHandle? {
            if let known = directories[path] { return known }
            let (parentPath, name) = Self.split(path)
            var found: GitHandle?
            if let parent = directory(parentPath), let entry = git_tree_entry_byname(parent.pointer, name),
               git_tree_entry_type(entry) == GIT_OBJECT_TREE, let id = git_tree_entry_id(entry) {
                var tree: OpaquePointer?
                var oid = id.pointee
                if git_tree_lookup(&tree, repository, &oid) == 0, let tree { found = GitHandle(tree) { git_tree_free($0) } }
            }
            directories[path] = .some(found)
            return found
        }

        private static func split(_ path: String) -> (directory: String, name: String) {
            guard let slash = path.lastIndex(of: "/") else { return ("", path) }
            return (String(path[..<slash]), String(path[path.index(after: slash)...]))
        }
    }

    /// Writes the blobs and the new tree: `baseline` with `changes` applied.
    private func updatedTree(_ baseline: GitHandle, changes: [LedgerChange],
                             operation: String) throws(LedgerError) -> GitOID {
        func conflict(_ path: String, _ message: String) -> LedgerError {
            LedgerError(.invalidInput, operation: "\(operation): \(path)", remote: remoteForErrors, message: message,
                        hint: "delete the existing entry in an earlier commit first")
        }
        var updates: [(action: git_tree_update_t, id: git_oid, path: String)] = []
        let entries = EntryTypes(baseline, repository: repository.pointer)
        for change in changes {
            guard let content = change.content else {
                switch entries.type(of: change.path) {
                case nil: continue  // already absent
                case GIT_OBJECT_TREE?: throw conflict(change.path, "it is a directory; delete its files instead")
                default: updates.append((GIT_TREE_UPDATE_REMOVE, git_oid(), change.path))
                }
                continue
            }
            if entries.type(of: change.path) == GIT_OBJECT_TREE {
                throw conflict(change.path, "a directory exists at this path")
            }
            var ancestor = ""
            for component in change.path.split(separator: "/").dropLast() {
                ancestor += ancestor.isEmpty ? String(component) : "/" + component
                if let type = entries.type(of: ancestor), type != GIT_OBJECT_TREE {
                    throw conflict(change.path, "'\(ancestor)' is a file, not a directory")
                }
            }
            var blobOID = git_oid()
            let code = content.withUnsafeBytes {
                git_blob_create_from_buffer(&blobOID, repository.pointer, $0.baseAddress, $0.count)
            }
            if code < 0 {
                throw failure(code, kind: .mirror, operation: "\(operation): write \(change.path)",
                              hint: "check the mirror directory (disk full?)")
            }
            updates.append((GIT_TREE_UPDATE_UPSERT, blobOID, change.path))
        }

        let paths = updates.map { strdup($0.path) }
        defer { paths.forEach { free($0) } }
        var cUpdates: [git_tree_update] = []
        for (index, update) in updates.enumerated() {
            guard let path = paths[index] else {
                throw LedgerError(.mirror, operation: operation, remote: remoteForErrors,
                                  message: "out of memory", hint: "retry")
            }
            cUpdates.append(git_tree_update(action: update.action, id: update.id,
                                            filemode: GIT_FILEMODE_BLOB, path: path))
        }
        var treeOID = git_oid()
        let code = git_tree_create_updated(&treeOID, repository.pointer, baseline.pointer, cUpdates.count, &cUpdates)
        if code < 0 {
            throw failure(code, kind: .mirror, operation: operation, hint: "check the changes and the mirror directory")
        }
        return GitOID(raw: treeOID)
    }

    private func validate(_ changes: [LedgerChange], message: String, author: LedgerSignature,
                          operation: String) throws(LedgerError) {
        func refuse(_ what: String, _ message: String) -> LedgerError {
            LedgerError(.invalidInput, operation: "\(operation): \(what)", remote: remoteForErrors, message: message,
                        hint: "paths are relative, '/'-separated, without '.', '..', '.git', empty parts or control characters")
        }
        guard !message.utf8.contains(0) else { throw refuse("message", "the commit message contains NUL") }
        var seen = Set<String>()
        for change in changes {
            if let problem = LedgerPath.problem(change.path) {
                // The path is shown escaped: it may hold control characters.
                throw refuse(String(reflecting: change.path), problem)
            }
            guard seen.insert(change.path).inserted else {
                throw refuse(change.path, "the path is changed twice in one commit")
            }
        }
        for path in seen {
            var ancestor = ""
            for component in path.split(separator: "/").dropLast() {
                ancestor += ancestor.isEmpty ? String(component) : "/" + component
                if seen.contains(ancestor) {
                    throw refuse(path, "'\(ancestor)' is changed as a file in the same commit")
                }
            }
        }
    }
}
