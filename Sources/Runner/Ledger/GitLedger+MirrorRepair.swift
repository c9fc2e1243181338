import CGit2
import Foundation

/// A corrupt mirror is rebuilt, not reported forever. The mirror is only a cache of
/// the remote, which is the truth: when libgit2 finds a garbled or truncated object,
/// pack or ref in it (a crash mid-write, a full disk, a bad sector), the ledger moves
/// the mirror aside to `<mirror>.corrupt` (replacing an older one), creates a fresh
/// one, fetches again the refs the old one held, and runs the operation once more.
///
/// What is lost: commits made with `commit(...)` that were never pushed; an
/// operation naming one then fails with `.object` ("fetch first"), as for any
/// missing object. A missing object alone (`GIT_ENOTFOUND`) is not corruption.
/// Rebuilds are at most one per `minimumRebuildInterval`, so a remote that serves
/// objects libgit2 cannot read cannot make a worker refetch everything in a loop.
extension GitLedger {
    /// Seconds between two rebuilds of one ledger's mirror.
    static let minimumRebuildInterval = 60.0

    /// Runs `body` (lock held); if it failed because the mirror is corrupt, rebuilds the mirror and runs `body` again.
    func repairingMirror<T>(_ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        do throws(LedgerError) {
            return try body()
        } catch where (Self.isCorruption(error) || looksLikeDamagedPack(error)) && rebuildAllowed() {
            try rebuildMirror(cause: error)
            return try body()
        }
    }

    /// libgit2 1.5 reports an object in a truncated pack as simply not found, so a
    /// "not found" is checked against the packs: each pack's last 20 bytes (its
    /// checksum) must equal the pack checksum its .idx recorded (idx v2 trailer).
    private func looksLikeDamagedPack(_ error: LedgerError) -> Bool {
        guard error.kind == .object, error.gitCode == GIT_ENOTFOUND.rawValue else { return false }
        let packDirectory = mirrorPath + "/objects/pack"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: packDirectory) else { return false }
        for index in names where index.hasSuffix(".idx") {
            let base = packDirectory + "/" + index.dropLast(4)
            guard let idxTrailer = Self.tail(of: base + ".idx", count: 40) else { continue }
            guard let packTrailer = Self.tail(of: base + ".pack", count: 20) else { return true }
            if Array(idxTrailer.prefix(20)) != packTrailer { return true }
        }
        return false
    }

    /// The last `count` bytes of a file, nil when it cannot be read or is shorter.
    private static func tail(of path: String, count: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= count else { return nil }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, info.st_size - off_t(count)) }
        return read == count ? bytes : nil
    }

    /// Whether libgit2's error means the mirror's own files are damaged.
    static func isCorruption(_ error: LedgerError) -> Bool {
        switch error.kind {
        case .authentication, .hostKey, .invalidInput, .invalidRemote, .credentials: return false
        case .mirror, .object, .network: break
        }
        guard let code = error.gitCode, let gitClass = error.gitClass else { return false }
        // A remote ref deleted while libgit2 listed it: the remote moved, the mirror is fine.
        if isVanishedRemoteRef(error) { return false }
        if code == GIT_EMISMATCH.rawValue { return true }  // the object's content does not hash to its id
        let notCorruption = [GIT_ENOTFOUND, GIT_EEXISTS, GIT_EMODIFIED, GIT_ELOCKED, GIT_EAUTH, GIT_ECERTIFICATE,
                             GIT_ENONFASTFORWARD, GIT_EUSER]
        if notCorruption.contains(where: { $0.rawValue == code }) { return false }
        let corruptClasses = [GIT_ERROR_ZLIB, GIT_ERROR_ODB, GIT_ERROR_OBJECT, GIT_ERROR_TREE, GIT_ERROR_REPOSITORY,
                              GIT_ERROR_CONFIG, GIT_ERROR_REFERENCE]
        return corruptClasses.contains { Int32($0.rawValue) == gitClass }
    }

    private func rebuildAllowed() -> Bool {
        guard let lastRebuild else { return true }
        return Self.monotonicSeconds() - lastRebuild >= Self.minimumRebuildInterval
    }

    /// Moves the mirror aside, recreates it and fetches the refs it held (lock held).
    private func rebuildMirror(cause: LedgerError) throws(LedgerError) {
        let names = localRefNames()
        lastRebuild = Self.monotonicSeconds()
        let aside = try Self.moveAside(mirrorPath, remote: remoteForErrors)
        // Assigning frees the old git_repository (its open packs point into `aside`).
        repository = try MirrorDirectory.open(mirrorPath, remote: remoteForErrors)
        var refs = names ?? []
        if names == nil {
            // The old refs could not be listed: take every ref the remote has.
            refs = try withConnection(GIT_DIRECTION_FETCH, operation: "list remote refs to rebuild the mirror") {
                (remote, _) throws(LedgerError) -> [String] in
                advertisedRefs(remote, prefix: "refs/").keys.sorted()
            }
        }
        // Never main's compacted-away history (docs/ARCHITECTURE.md §10): that is what compaction spares every mirror.
        refs.removeAll { $0.hasPrefix(Self.pushRefPrefix) || $0.hasPrefix("refs/dgrid-history/") || !$0.hasPrefix("refs/") }
        let note = "mirror \(mirrorPath) was corrupt (\(cause.operation): \(cause.message)); moved to \(aside) "
            + "and rebuilt from \(remoteForErrors), fetching \(refs.count) ref(s)"
        rebuildNotes.append(note)
        logger.warning("\(note)")
        if !refs.isEmpty { try fetchLocked(refs) }
    }

    /// The refs the mirror holds, or nil when they cannot be listed.
    private func localRefNames() -> [String]? {
        var list = git_strarray()
        guard git_reference_list(&list, repository.pointer) == 0 else { return nil }
        defer { git_strarray_dispose(&list) }
        return (0..<list.count).compactMap { list.strings[$0].map { String(cString: $0) } }
    }

    /// Renames `path` to `path.corrupt` (removing an older one); deletes it if it cannot be renamed. Returns where it went.
    static func moveAside(_ path: String, remote: String) throws(LedgerError) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        let aside = trimmed + ".corrupt"
        let files = FileManager.default
        var info = stat()
        if lstat(aside, &info) == 0 { try? files.removeItem(atPath: aside) }
        if rename(trimmed, aside) == 0 { return aside }
        let renameError = String(cString: strerror(errno))
        do {
            try files.removeItem(atPath: trimmed)
        } catch {
            throw LedgerError(.mirror, operation: "rebuild mirror \(path)", remote: remote,
                              message: "cannot move it aside (\(renameError)) or delete it",
                              hint: "delete the directory by hand; dgrid recreates it")
        }
        return "nowhere (deleted)"
    }

    static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
