import CGit2
import Foundation
import Sandbox

/// Every fetch leaves one more pack in the mirror (libgit2 indexes what it
/// receives as a pack, never as loose objects), and every commit a worker
/// builds is a loose object. A busy worker fetches main after each fold, so in
/// a day its mirror would hold thousands of packs — and libgit2 searches the
/// packs one by one on each lookup, rescanning the directory on each miss (a
/// push looks up every advertised ref). Past `packConsolidationThreshold`
/// packs, everything is written into one pack and the old files removed, as
/// `git repack -a -d` would; processes reading the mirror meanwhile keep their
/// open packs and find the new one on their next miss.
///
/// When main was rewritten (`dgrid compact` starts it anew from a root
/// commit, docs/ARCHITECTURE.md §10), the mirror is consolidated from what its
/// refs reach instead (`git repack -a -d` dropping the unreachable), once
/// `rewritePruneGraceSeconds` have passed: other processes sharing the mirror
/// may still be pushing a commit built on the old main, and need its objects
/// (as git's gc keeps unreachable objects for a grace period). The old
/// history stays on the server under refs/dgrid-history/, never fetched. Kept
/// in the mirror it would cost every push: libgit2 hides each advertised ref
/// the mirror holds, reading its whole tree — a year-old main's 100,000-entry
/// folders on every claim and fold.
extension GitLedger {
    /// Default for `packConsolidationThreshold`.
    static let defaultPackConsolidationThreshold = 24
    /// Loose objects past which the mirror is consolidated too: every ledger open
    /// reads each loose object whole (`damagedLooseObjects`), and a worker's own
    /// commits — folds, submissions, an archive run's bundles — are loose.
    static let looseConsolidationThreshold = 128
    /// Longer than any Git operation may take (the fetch deadline is 300 s by default).
    static let rewritePruneGraceSeconds: Double = 900
    /// Holds when main was first seen rewritten (seconds since the epoch), until the prune.
    var rewriteMarkerPath: String { mirrorPath + "/dgrid-main-rewritten" }

    /// Main was seen rewritten: the prune is due once the grace has passed (the first sighting counts).
    func noteMainRewritten(now: Double = Date().timeIntervalSince1970) {
        guard access(rewriteMarkerPath, F_OK) != 0 else { return }
        try? String(Int(now)).write(toFile: rewriteMarkerPath, atomically: true, encoding: .utf8)
    }

    /// Whether a rewrite was seen at least the grace ago.
    func rewritePruneDue(now: Double = Date().timeIntervalSince1970) -> Bool {
        guard let text = try? String(contentsOfFile: rewriteMarkerPath, encoding: .utf8),
              let seen = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
        return now - seen >= Self.rewritePruneGraceSeconds
    }

    /// After each fetch: notes a rewrite of main, and consolidates when due.
    func maintainMirror(afterFetchFrom tipsBefore: [(name: String, id: git_oid)]) {
        if branchRewritten(since: tipsBefore) { noteMainRewritten() }
        consolidatePacksIfMany(droppingUnreachable: rewritePruneDue())
    }

    /// With the ledger lock held. Best effort: a failure leaves the mirror as it was.
    /// `droppingUnreachable`: main was rewritten; keep only what the mirror's refs reach (and loose objects).
    func consolidatePacksIfMany(droppingUnreachable: Bool = false) {
        let packDirectory = mirrorPath + "/objects/pack"
        guard let names = FileIO.list(packDirectory) else { return }
        let packs = names.filter { $0.hasPrefix("pack-") && $0.hasSuffix(".idx") }.map { String($0.dropLast(4)) }
        let manyPacks = packs.count > packConsolidationThreshold
        let wholeMirror = manyPacks || droppingUnreachable
        guard wholeMirror || looseObjectFiles().count > Self.looseConsolidationThreshold else { return }
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
        if !manyPacks || droppingUnreachable {
            // The loose objects: alone, into one more pack (`git repack -d` without `-a`), so a
            // mirror holding a year of main's history is not rewritten every few folds; or
            // beside what the refs reach, when dropping the unreachable (a loose object may be
            // another process's commit not yet pushed).
            ids.ids = loose.compactMap { path in
                let parts = path.split(separator: "/").suffix(2)
                return GitOID(hex: parts.joined())?.raw
            }
        }
        var collected: Int32 = 0
        if manyPacks && !droppingUnreachable {
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
        if droppingUnreachable {
            let walked = insertReachableFromRefs(into: builder)
            guard walked == 0 else {
                logger.warning("pack consolidation skipped: cannot walk the mirror's refs (\(LibGit2.Failure(code: walked).message))")
                return
            }
        }
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
        for pack in packs where wholeMirror && pack != "pack-" + name {
            unlink(packDirectory + "/" + pack + ".idx")
            unlink(packDirectory + "/" + pack + ".pack")
        }
        for file in loose { unlink(file) }
        _ = git_odb_refresh(odb.pointer)
        if droppingUnreachable { unlink(rewriteMarkerPath) }
        logger.debug("consolidated the mirror\(droppingUnreachable ? " (main rewritten: unreachable objects dropped)" : ""): \(packs.count) packs and \(loose.count) loose objects into pack-\(name)")
    }

    /// Every commit, tree and blob the mirror's refs reach, into `builder`.
    private func insertReachableFromRefs(into builder: GitHandle) -> Int32 {
        var walkPointer: OpaquePointer?
        var code = git_revwalk_new(&walkPointer, repository.pointer)
        guard code == 0, let walkPointer else { return code }
        defer { git_revwalk_free(walkPointer) }
        // main, dgrid's refs and in-flight push sources (globs skip non-commits); never
        // refs/dgrid-history/, should one have reached the mirror: that is what goes.
        for glob in ["heads/*", "dgrid/*", String(Self.pushRefPrefix.dropFirst("refs/".count)) + "*"] {
            code = git_revwalk_push_glob(walkPointer, glob)
            guard code == 0 else { return code }
        }
        return git_packbuilder_insert_walk(builder.pointer, walkPointer)
    }

    /// The mirror's tips of the branches among `refs`, before a fetch moves them.
    func branchTips(_ refs: [String]) -> [(name: String, id: git_oid)] {
        refs.filter { $0.hasPrefix("refs/heads/") }.compactMap { name in
            var id = git_oid()
            return git_reference_name_to_id(&id, repository.pointer, name) == 0 ? (name, id) : nil
        }
    }

    /// Whether a branch recorded in `before` now points at a commit that does not
    /// descend from its old tip: history rewritten (a fast-forward walks back a few commits).
    func branchRewritten(since before: [(name: String, id: git_oid)]) -> Bool {
        before.contains { branch in
            var now = git_oid(), old = branch.id
            guard git_reference_name_to_id(&now, repository.pointer, branch.name) == 0, git_oid_equal(&now, &old) == 0 else { return false }
            return git_graph_descendant_of(repository.pointer, &now, &old) == 0
        }
    }

    /// Paths of the mirror's loose objects (`objects/xx/<38 hex>`).
    /// Read with readdir (`FileIO.list`), not Foundation's listing, which stats every
    /// entry: it runs on every open and fetch, over 256 directories.
    func looseObjectFiles() -> [String] {
        let objects = mirrorPath + "/objects"
        guard let directories = FileIO.list(objects) else { return [] }
        var files: [String] = []
        for directory in directories where directory.utf8.count == 2 && directory.allSatisfy(\.isHexDigit) {
            let path = objects + "/" + directory
            for name in FileIO.list(path) ?? []
            where name.utf8.count == 38 && name.allSatisfy(\.isHexDigit) {
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
