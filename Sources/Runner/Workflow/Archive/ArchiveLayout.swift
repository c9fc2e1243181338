import Sandbox

/// Where archived records live on main (docs/ARCHITECTURE.md §10):
///
///     archive/bundles/<YYYY-MM>/<YYYY-MM-DD>-<n>.tar.gz   the folded files, by the day they finished
///     archive/index/<xx>.tsv                              one line per archived task, sharded by id
///
/// Bundles are written once and never rewritten (a later run on the same day
/// takes the next `n`), so a damaged bundle never takes a new record down with
/// it. The index is sharded by the first byte of sha256(task id): whoever asks
/// whether one task is archived (a fold, a submission, a replay check) reads one
/// shard of ~1/256 of the index, not all of it, and an archive run rewrites only
/// the shards its tasks fall in.
enum ArchiveLayout {
    static let root = "archive/"
    static let indexDirectory = "archive/index/"
    static let bundlesDirectory = "archive/bundles/"
    static let indexSuffix = ".tsv"
    static let bundleSuffix = ".tar.gz"

    /// The shard of a task id: two lowercase hex digits.
    static func shard(of taskID: String) -> String {
        String(Digest(of: Array(taskID.utf8)).hex.prefix(2))
    }

    static func indexPath(shard: String) -> String { indexDirectory + shard + indexSuffix }

    /// The shard an index path names; nil for anything else under archive/.
    static func shard(ofIndexPath path: String) -> String? {
        guard path.hasPrefix(indexDirectory), path.hasSuffix(indexSuffix) else { return nil }
        let name = path.dropFirst(indexDirectory.count).dropLast(indexSuffix.count)
        guard name.utf8.count == 2, name.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        return String(name)
    }

    /// `archive/bundles/2026-11/2026-11-27-1.tar.gz` for day `2026-11-27`, number 1.
    static func bundlePath(day: String, number: Int) -> String {
        "\(bundlesDirectory)\(day.prefix(7))/\(day)-\(number)\(bundleSuffix)"
    }

    /// Whether `path` has a bundle's shape (what an index line may point at).
    static func isBundlePath(_ path: String) -> Bool {
        guard path.hasPrefix(bundlesDirectory), path.hasSuffix(bundleSuffix) else { return false }
        let rest = path.dropFirst(bundlesDirectory.count).dropLast(bundleSuffix.count)
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 7, let name = parts.last else { return false }
        return name.hasPrefix(parts[0]) && name.utf8.allSatisfy { (0x30...0x39).contains($0) || $0 == 0x2D }
    }

    /// `YYYY-MM-DD` of an ISO-8601 time, or nil when it is not one.
    static func day(of time: String) -> String? {
        let day = String(time.prefix(10))
        let bytes = Array(day.utf8)
        guard bytes.count == 10, bytes[4] == 0x2D, bytes[7] == 0x2D,
              bytes.enumerated().allSatisfy({ $0.offset == 4 || $0.offset == 7 || (0x30...0x39).contains($0.element) }) else { return nil }
        return day
    }
}
