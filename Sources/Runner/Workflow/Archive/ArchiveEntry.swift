#if canImport(Glibc)
import Glibc
#endif

/// One archived task, as a line of the index (docs/ARCHITECTURE.md §10):
///
///     <task id> TAB <status> TAB <exit code> TAB <finished at> TAB <node> TAB <bundle> TAB <record path>
///
/// Enough to list and filter results (`dgrid results`) and to answer "is this
/// task finished, and how" without opening a bundle; the record itself is
/// `<record path>.log` inside `<bundle>`. Lines come from main, which any
/// repository writer can push: each field is checked, and a line that fails is
/// no entry at all.
struct ArchiveEntry: Equatable, Sendable {
    var taskID: String
    /// The record's own status (`skipped` included), for listings.
    var status: ResultStatus
    var exitCode: Int32
    /// ISO-8601, as the record says; may be empty for a record that had none.
    var finishedAt: String
    var nodeID: String
    /// The bundle on main that holds the task's files.
    var bundle: String
    /// Where the task file was (`tasks/completed/<node>-<id>.json`, …); its record is this path + `.log` in the bundle.
    var recordPath: String

    /// How main shows the task finished, by the folder it was archived from (as `GridSnapshot.finishedStatus`).
    var folderStatus: ResultStatus {
        if recordPath.hasPrefix("tasks/completed/") { return .completed }
        return recordPath.hasPrefix(GridSnapshot.rejectedDirectory) ? .rejected : .failed
    }

    var line: String {
        [taskID, status.rawValue, String(exitCode), finishedAt, nodeID, bundle, recordPath].joined(separator: "\t")
    }

    static func parse<S: StringProtocol>(line: S) -> ArchiveEntry? {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 7 else { return nil }
        let taskID = String(fields[0]), node = String(fields[4]), bundle = String(fields[5]), recordPath = String(fields[6])
        guard TaskParser.isValidTaskID(taskID), let status = ResultStatus(rawValue: String(fields[1])),
              let exitCode = Int32(fields[2]), fields[3].utf8.count <= 40,
              fields[3].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
              node.isEmpty || LedgerLayout.isValidNodeID(node),
              ArchiveLayout.isBundlePath(bundle), GridSnapshot.finishedTaskID(recordPath) == taskID else { return nil }
        return ArchiveEntry(taskID: taskID, status: status, exitCode: exitCode, finishedAt: String(fields[3]),
                            nodeID: node, bundle: bundle, recordPath: recordPath)
    }

    /// A shard's text: one line per entry, sorted by task id (a diff of two shards reads as what was added).
    static func shardText(_ entries: [ArchiveEntry]) -> [UInt8] {
        Array(entries.sorted { $0.taskID.utf8.lexicographicallyPrecedes($1.taskID.utf8) }.map { $0.line + "\n" }.joined().utf8)
    }

    /// A shard's entries by task id; the first usable line of an id wins, unusable lines are left out.
    static func parseShard(_ bytes: [UInt8]) -> [String: ArchiveEntry] {
        ArchiveShard(bytes).all()
    }
}

/// One index shard as read; a line is parsed and checked only when its id is asked
/// for — a fold asking about 20 tasks parses 20 lines, not the shards' thousands.
struct ArchiveShard: Sendable {
    /// The shard as read: a fold asks a shard about one or two ids, so lines are
    /// found by scanning the bytes, not split into strings up front (a shard holds ~400).
    private let bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The first line for `taskID` that is a usable entry.
    func entry(_ taskID: String) -> ArchiveEntry? {
        let id = Array(taskID.utf8)
        // Over raw bytes (memchr, memcmp): every fold asks about each id it folds,
        // and on a year-old grid each answer is a no found in a shard of ~400 lines.
        return bytes.withUnsafeBufferPointer { buffer -> ArchiveEntry? in
            guard let base = buffer.baseAddress else { return nil }
            var start = 0
            while start < buffer.count {
                let end = memchr(base + start, 0x0A, buffer.count - start).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) - base } ?? buffer.count
                // A line of the id that is not a usable entry (a writer can put a bad one first) is passed over.
                if end - start > id.count, base[start + id.count] == 0x09, memcmp(base + start, id, id.count) == 0,
                   let entry = ArchiveEntry.parse(line: String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self)),
                   entry.taskID == taskID {
                    return entry
                }
                start = end + 1
            }
            return nil
        }
    }

    func all() -> [String: ArchiveEntry] {
        var entries: [String: ArchiveEntry] = [:]
        for line in bytes.split(separator: 0x0A) {
            guard let entry = ArchiveEntry.parse(line: String(decoding: line, as: UTF8.self)), entries[entry.taskID] == nil else { continue }
            entries[entry.taskID] = entry
        }
        return entries
    }
}
