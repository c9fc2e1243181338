import Synchronization

/// The archive index of one tip of main (docs/ARCHITECTURE.md §10): which tasks
/// were archived, and where. Shards are read when first asked about — a fold
/// or a submission asks about a few ids and reads a few shards — through
/// `load`, which a connection backs with a cache by blob id, so a shard is
/// parsed once per process however many tips share it.
final class ArchiveCatalog: Sendable {
    /// Shard (two hex digits) → its blob on main.
    let shards: [String: GitOID]
    /// Changes exactly when some shard does: readiness carried between tips compares it.
    let identity: Int
    private let load: @Sendable (GitOID) -> ArchiveShard

    static let empty = ArchiveCatalog(shards: [:]) { _ in ArchiveShard([]) }

    init(shards: [String: GitOID], load: @escaping @Sendable (GitOID) -> ArchiveShard) {
        self.shards = shards
        self.load = load
        var hasher = Hasher()
        for (shard, blob) in shards.sorted(by: { $0.key < $1.key }) {
            hasher.combine(shard)
            hasher.combine(blob.hex)
        }
        identity = shards.isEmpty ? 0 : hasher.finalize()
    }

    /// The index shards among main's files.
    static func shards(in files: [String: GitOID]) -> [String: GitOID] {
        var shards: [String: GitOID] = [:]
        for (path, blob) in files where path.hasPrefix(ArchiveLayout.indexDirectory) {
            if let shard = ArchiveLayout.shard(ofIndexPath: path) { shards[shard] = blob }
        }
        return shards
    }

    var isEmpty: Bool { shards.isEmpty }

    func entry(for taskID: String) -> ArchiveEntry? {
        guard !shards.isEmpty, let blob = shards[ArchiveLayout.shard(of: taskID)] else { return nil }
        return load(blob).entry(taskID)
    }

    func contains(_ taskID: String) -> Bool { entry(for: taskID) != nil }

    /// Every entry (every shard read): for listings and counts, not for polls.
    func allEntries() -> [ArchiveEntry] {
        shards.values.flatMap { load($0).all().values }
    }

    /// The entries of one shard, as main holds it now (an archive run merges into them).
    func entries(inShard shard: String) -> [String: ArchiveEntry] {
        shards[shard].map { load($0).all() } ?? [:]
    }
}

/// The tasks main shows as finished (docs/ARCHITECTURE.md §10): those whose files
/// are in `completed/`, `failed/` or `rejected/`, and those archived from there.
/// A task leaves the first set for the second in one commit, so it is in one
/// of them at every tip; asking never reads more than one index shard.
public struct FinishedTasks: Sendable {
    /// On main's tree now (read once per tip, as bytes: `FinishedIndex`).
    let onMain: FinishedIndex
    /// Also counted as finished (e.g. tasks with a published result not folded yet).
    let more: Set<String>
    let archive: ArchiveCatalog

    init(onMain: FinishedIndex, more: Set<String> = [], archive: ArchiveCatalog) {
        self.onMain = onMain
        self.more = more
        self.archive = archive
    }

    static let none = FinishedTasks(onMain: FinishedIndex(.empty), archive: .empty)

    public func contains(_ taskID: String) -> Bool {
        isRecent(taskID) || archive.contains(taskID)
    }

    /// Finished on main's tree (or among `more`), not only in the archive.
    func isRecent(_ taskID: String) -> Bool {
        onMain.contains(taskID) || more.contains(taskID)
    }

    /// These, and `more` (e.g. tasks with a published result not folded yet).
    func adding<S: Sequence>(_ more: S) -> FinishedTasks where S.Element == String {
        FinishedTasks(onMain: onMain, more: self.more.union(more), archive: archive)
    }
}
