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
    /// On main's tree now (every id read once per tip).
    let recent: Set<String>
    let archive: ArchiveCatalog

    static let none = FinishedTasks(recent: [], archive: .empty)

    public func contains(_ taskID: String) -> Bool {
        recent.contains(taskID) || archive.contains(taskID)
    }

    /// These, and `more` (e.g. tasks with a published result not folded yet).
    func adding<S: Sequence>(_ more: S) -> FinishedTasks where S.Element == String {
        FinishedTasks(recent: recent.union(more), archive: archive)
    }
}
