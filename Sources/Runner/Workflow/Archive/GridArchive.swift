import Foundation

/// `dgrid archive --older-than 7d` (docs/ARCHITECTURE.md §10): folded records older
/// than a cutoff leave `tasks/completed|failed|rejected/` for day bundles under
/// `archive/bundles/`, with an index line each under `archive/index/`, in one
/// commit on main moved by compare-and-swap — a fold or submission racing it
/// makes it plan again, never lose anything. The task stays finished (a replay
/// is still refused, a dependency still counts) and `dgrid result` still finds it.
public struct GridArchive {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    /// Tasks one run archives at most (the rest wait for the next run): bounds the memory and the commit.
    public static let maxPerRun = 50_000
    /// Tasks per bundle at most: a bundle is read whole to find one record.
    static let maxPerBundle = 10_000

    public struct Summary: Sendable, CustomStringConvertible {
        public var archived = 0
        public var bundles: [String] = []
        /// Finished tasks left on main: younger than the cutoff.
        public var younger = 0
        /// Finished tasks whose record gives no time to judge (unreadable, or no `finished_at`): left in place.
        public var undated = 0
        /// Old enough, but past `maxPerRun`: the next run takes them.
        public var remaining = 0
        public var mainMoved = false

        public var description: String {
            var text = archived == 0 ? "nothing to archive" : "archived \(archived) tasks into \(bundles.count) bundle\(bundles.count == 1 ? "" : "s")"
            text += "; \(younger) newer left in place"
            if undated > 0 { text += ", \(undated) without a readable finish time left in place" }
            if remaining > 0 { text += "; \(remaining) more are old enough: run again" }
            return text
        }
    }

    /// `progress` gets a line now and then on long runs (records read, bundles written).
    public func run(olderThan age: TimeInterval, now: Date = Date(), attempts: Int = 8,
                    progress: ((String) -> Void)? = nil) throws(GridError) -> Summary {
        guard age >= 0 else { throw .local("--older-than must not be negative") }
        var backoff = ContentionBackoff()
        for attempt in 0..<attempts {
            if attempt > 0 { backoff.wait() }
            let snapshot = try connection.snapshot()
            guard let main = snapshot.mainTip else { throw .notInitialised(repository: connection.repositoryInUse) }
            var (changes, summary) = try plan(snapshot, cutoff: now.addingTimeInterval(-age), progress: progress)
            guard !changes.isEmpty else { return summary }
            let list = changes.sorted { $0.key < $1.key }.map { LedgerChange(path: $0.key, content: $0.value) }
            let message = "dgrid archive: \(summary)"
            let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
                let commit = try ledger.commit(parent: main, changes: list, message: message)
                return try ledger.updateRef(GridConnection.mainRef, from: main, to: commit)
            }
            guard outcome == .applied else {
                progress?("main moved while archiving (a fold or a submission); planning again")
                continue
            }
            summary.mainMoved = true
            return summary
        }
        throw .contention(operation: "archive", attempts: attempts)
    }

    /// A finished task chosen for a bundle: its index line and its files.
    private struct Chosen {
        var entry: ArchiveEntry
        var day: String
        var paths: [String]
        /// The record, read once to date it; bundled as it is.
        var recordBytes: [UInt8]
    }

    func plan(_ snapshot: GridSnapshot, cutoff: Date,
              progress: ((String) -> Void)?) throws(GridError) -> (changes: [String: [UInt8]?], summary: Summary) {
        var summary = Summary()
        var chosen: [Chosen] = []
        let finished = snapshot.index.finishedPathsByTask.sorted { $0.key < $1.key }
        // A quorum task's votes and tally (`QuorumLayout`) go with it: reputation is recounted from the bundle.
        var votes: [String: [String]] = [:]
        for path in snapshot.files.others.keys where path.hasPrefix(QuorumLayout.root) {
            let rest = path.dropFirst(QuorumLayout.root.count)
            if let slash = rest.firstIndex(of: "/") { votes[String(rest[..<slash]), default: []].append(path) }
        }
        for (number, (taskID, paths)) in finished.enumerated() {
            if number > 0, number % 10_000 == 0 { progress?("read \(number) of \(finished.count) finished records") }
            let (recordPath, recordBlob) = snapshot.deciding(paths)
            guard let blob = recordBlob,
                  let bytes = try? connection.blob(blob, limit: 4 << 20), let record = ResultRecord.parse(bytes),
                  record.taskID == taskID, let finishedAt = ISOTime.parse(record.finishedAt) else {
                summary.undated += 1
                continue
            }
            guard finishedAt < cutoff else {
                summary.younger += 1
                continue
            }
            guard chosen.count < Self.maxPerRun else {
                summary.remaining += 1
                continue
            }
            let day = String(ISOTime.string(finishedAt).prefix(10))
            let entry = ArchiveEntry(taskID: taskID, status: record.status, exitCode: record.exitCode, finishedAt: record.finishedAt,
                                     nodeID: record.nodeID, bundle: "", recordPath: recordPath)
            // The task file, its record and its signatures, under every folder name main has for it.
            var files: [String] = []
            for path in paths {
                for name in [path, LedgerLayout.logPath(for: path), LedgerLayout.logPath(for: path) + NodeKey.signatureSuffix]
                    + TaskSignatureFiles.suffixes.map({ path + $0 })
                where snapshot.files[name] != nil {
                    files.append(name)
                }
            }
            files += (votes[taskID] ?? []).sorted()
            chosen.append(Chosen(entry: entry, day: day, paths: files, recordBytes: bytes))
        }
        guard !chosen.isEmpty else { return ([:], summary) }

        var changes: [String: [UInt8]?] = [:]
        var entries: [ArchiveEntry] = []
        let byDay = Dictionary(grouping: chosen, by: \.day).sorted { $0.key < $1.key }
        for (day, tasks) in byDay {
            var number = 1
            for start in stride(from: 0, to: tasks.count, by: Self.maxPerBundle) {
                while snapshot.files[ArchiveLayout.bundlePath(day: day, number: number)] != nil { number += 1 }
                let bundle = ArchiveLayout.bundlePath(day: day, number: number)
                number += 1
                let group = tasks[start..<min(tasks.count, start + Self.maxPerBundle)]
                var members: [(path: String, bytes: [UInt8])] = []
                for task in group {
                    let record = LedgerLayout.logPath(for: task.entry.recordPath)
                    for path in task.paths {
                        guard let blob = snapshot.files[path] else { continue }
                        let bytes = path == record ? task.recordBytes : try connection.blob(blob, limit: ArchiveBundle.memberLimit)
                        members.append((path, bytes))
                        changes[path] = .some(nil)
                    }
                    var entry = task.entry
                    entry.bundle = bundle
                    entries.append(entry)
                }
                changes[bundle] = try Self.verifiedBundle(members, name: bundle)
                summary.bundles.append(bundle)
                progress?("bundled \(group.count) tasks of \(day) into \(bundle)")
            }
        }
        // Each shard the new lines fall in is rewritten whole: its lines as main has them, and these.
        let catalog = snapshot.index.finishedTaskIDs.archive
        for (shard, added) in Dictionary(grouping: entries, by: { ArchiveLayout.shard(of: $0.taskID) }) {
            var merged = catalog.entries(inShard: shard)
            for entry in added where merged[entry.taskID] == nil { merged[entry.taskID] = entry }
            changes[ArchiveLayout.indexPath(shard: shard)] = ArchiveEntry.shardText(Array(merged.values))
        }
        summary.archived = entries.count
        return (changes, summary)
    }

    /// The bundle's bytes, once they are shown to read back member for member:
    /// nothing leaves main's tree that the bundle does not hold.
    private static func verifiedBundle(_ members: [(path: String, bytes: [UInt8])], name: String) throws(GridError) -> [UInt8] {
        let bundle: [UInt8]
        let back: [String: [UInt8]]
        do {
            bundle = try ArchiveBundle.write(members, modified: Int(Date().timeIntervalSince1970))
            back = try ArchiveBundle.read(bundle) { _ in true }
        } catch {
            throw .local("building \(name): \(error); nothing was archived")
        }
        for member in members where back[member.path] != member.bytes {
            throw .local("building \(name): \(member.path) does not read back as written; nothing was archived")
        }
        return bundle
    }
}
