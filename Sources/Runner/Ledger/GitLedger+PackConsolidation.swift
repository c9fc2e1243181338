import CGit2
import Foundation

/// Every fetch leaves one more pack in the mirror (libgit2 indexes what it
/// receives as a pack, never as loose objects), and every commit a worker
/// builds is a loose object. A busy worker fetches main after each fold, so in
/// a day its mirror would hold thousands of packs — and libgit2 searches the
/// packs one by one on each lookup, rescanning the directory on each miss (a
/// push looks up every advertised ref). Past `packConsolidationThreshold`
/// packs, everything is written into one pack and the old files removed, as
/// `git repack -a -d` would; processes reading the mirror meanwhile keep their
/// open packs and find the new one on their next miss.
extension GitLedger {
    /// Default for `packConsolidationThreshold`.
    static let defaultPackConsolidationThreshold = 24
    /// Loose objects past which the mirror is consolidated too: every ledger open
    /// reads each loose object whole (`damagedLooseObjects`), and a worker's own
    /// commits — folds, submissions, an archive run's bundles — are loose.
    static let looseConsolidationThreshold = 128

    /// With the ledger lock held. Best effort: a failure leaves the mirror as it was.
    func consolidatePacksIfMany() {
        let packDirectory = mirrorPath + "/objects/pack"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: packDirectory) else { return }
        let packs = names.filter { $0.hasPrefix("pack-") && $0.hasSuffix(".idx") }.map { String($0.dropLast(4)) }
        let manyPacks = packs.count > packConsolidationThreshold
        guard manyPacks || looseObjectFiles().count > Self.looseConsolidationThreshold else { return }
        // One consolidator at a time (another process may share this mirror);
        // whoever finds the lock taken simply skips this round.
        let lockFD = open(mirrorPath + "/dgrid-consolidate.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lockFD >= 0 else { return }
        defer { close(lockFD) }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else { return }
        // The packbuilder reads every loose object through libgit2: drop damaged
        // ones first (a truncated one would hang it). Were one of them needed,
        // its next read misses and is fetched again.
        for (path, problem) in damagedLooseObjects() {
            logger.warning("removing damaged loose object \(path): \(problem)")
            unlink(path)
        }
        let loose = looseObjectFiles()

        var odbPointer: OpaquePointer?
        guard git_repository_odb(&odbPointer, repository.pointer) == 0, let odbPointer else { return }
        let odb = GitHandle(odbPointer) { git_odb_free($0) }
        // Load packs other processes wrote since our last look, so none listed above is missed.
        guard git_odb_refresh(odb.pointer) == 0 else { return }
        let ids = ObjectIDCollector()
        if !manyPacks {
            // Only the loose objects, into one more pack (`git repack -d` without `-a`):
            // a mirror holding a year of main's history is not rewritten every few folds.
            ids.ids = loose.compactMap { path in
                let parts = path.split(separator: "/").suffix(2)
                return GitOID(hex: parts.joined())?.raw
            }
        }
        var collected: Int32 = 0
        if manyPacks {
            collected = withExtendedLifetime(ids) {
                git_odb_foreach(odb.pointer, { id, payload in
                    guard let id, let payload else { return -1 }
                    Unmanaged<ObjectIDCollector>.fromOpaque(payload).takeUnretainedValue().ids.append(id.pointee)
                    return 0
                }, Unmanaged.passUnretained(ids).toOpaque())
            }
        }
        guard collected == 0 else {
            logger.warning("pack consolidation skipped: cannot list the mirror's objects (\(LibGit2.Failure(code: collected).message))")
            return
        }

        var builderPointer: OpaquePointer?
        guard git_packbuilder_new(&builderPointer, repository.pointer) == 0, let builderPointer else { return }
        let builder = GitHandle(builderPointer) { git_packbuilder_free($0) }
        _ = git_packbuilder_set_threads(builder.pointer, 1)
        for var id in ids.ids {
            let code = git_packbuilder_insert(builder.pointer, &id, nil)
            guard code == 0 else {
                logger.warning("pack consolidation skipped: \(LibGit2.Failure(code: code).message)")
                return
            }
        }
        let written = git_packbuilder_write(builder.pointer, packDirectory, 0, nil, nil)
        guard written == 0, let name = git_packbuilder_name(builder.pointer).map({ String(cString: $0) }) else {
            logger.warning("pack consolidation skipped: cannot write the pack (\(LibGit2.Failure(code: written).message))")
            return
        }
        // The index first: an index without its pack reads as a damaged pack,
        // a pack without its index is simply not looked at.
        for pack in packs where manyPacks && pack != "pack-" + name {
            unlink(packDirectory + "/" + pack + ".idx")
            unlink(packDirectory + "/" + pack + ".pack")
        }
        for file in loose { unlink(file) }
        _ = git_odb_refresh(odb.pointer)
        logger.debug("consolidated the mirror: \(packs.count) packs and \(loose.count) loose objects into pack-\(name)")
    }

    /// Paths of the mirror's loose objects (`objects/xx/<38 hex>`).
    func looseObjectFiles() -> [String] {
        let objects = mirrorPath + "/objects"
        let fileManager = FileManager.default
        guard let directories = try? fileManager.contentsOfDirectory(atPath: objects) else { return [] }
        var files: [String] = []
        for directory in directories where directory.count == 2 && directory.allSatisfy(\.isHexDigit) {
            let path = objects + "/" + directory
            for name in (try? fileManager.contentsOfDirectory(atPath: path)) ?? []
            where name.count == 38 && name.allSatisfy(\.isHexDigit) {
                files.append(path + "/" + name)
            }
        }
        return files
    }
}

/// Collects object ids from git_odb_foreach's C callback.
private final class ObjectIDCollector {
    var ids: [git_oid] = []
}
