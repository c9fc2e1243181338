/// Task id → its folded files on main (`completed/<node>-<id>.json`,
/// `failed/<node>-<id>.json`, `rejected/<id>.json`), read from the finished
/// folders' entries as bytes (`MainFiles`): one pass over the names, one table
/// of offsets, no String per file. A fold asks about the tasks it folds, a
/// picker about the tasks it sees queued; only readers of every finished task
/// (status, archival, listings) make their ids (docs/ARCHITECTURE.md §10).
struct FinishedIndex: Sendable {
    /// One folded task file: which folder, which entry, where the task id sits in its name.
    private struct File: Sendable {
        let folder: Int32, entry: Int32, idStart: Int32, idCount: Int32
        /// The next file of the same task, or -1.
        var next: Int32
    }

    private let folders: [(path: String, entries: FolderEntries)]
    private var files: [File] = []
    /// Per distinct task: its first file, and its id's hash (`hash(of:)`).
    private var firstFile: [Int32] = []
    private var hashes: [Int] = []
    /// Open addressing over distinct tasks (index + 1; 0 is empty), a power of two long.
    private var slots: [Int32]

    /// The sum of every task's hash (wrapping): two tips' finished sets differ by the
    /// tasks whose hashes make up the difference (`QueueReadiness`).
    private(set) var fingerprint = 0

    init(_ main: MainFiles) {
        folders = MainFiles.entryFolders.compactMap { path in main.folders[path].map { (path, $0) } }
        let capacity = folders.reduce(0) { $0 + $1.entries.count }
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        for (folderIndex, folder) in folders.enumerated() {
            let rejected = folder.path == GridSnapshot.rejectedDirectory
            for entry in 0..<folder.entries.count {
                guard let id = folder.entries.withName(entry, { Self.taskID(inName: $0, rejected: rejected) }) else { continue }
                add(File(folder: Int32(folderIndex), entry: Int32(entry), idStart: Int32(id.lowerBound), idCount: Int32(id.count), next: -1))
            }
        }
    }

    /// Distinct tasks.
    var count: Int { firstFile.count }

    func contains(_ taskID: String) -> Bool { task(taskID) != nil }

    /// The task's folded files' paths, sorted; empty when it has none here.
    func paths(of taskID: String) -> [String] {
        guard let task = task(taskID) else { return [] }
        var paths: [String] = []
        var file = firstFile[task]
        while file >= 0 {
            let found = files[Int(file)]
            let folder = folders[Int(found.folder)]
            paths.append(folder.path + folder.entries.name(Int(found.entry)))
            file = found.next
        }
        return paths.sorted()
    }

    /// Every task id (made here, for readers that walk them all).
    var taskIDs: [String] {
        firstFile.map { first in
            let file = files[Int(first)]
            return folders[Int(file.folder)].entries.withName(Int(file.entry)) {
                String(decoding: UnsafeRawBufferPointer(rebasing: $0[Int(file.idStart)..<Int(file.idStart + file.idCount)]), as: UTF8.self)
            }
        }
    }

    /// Task id → its paths, for readers of every finished task.
    var pathsByTask: [String: [String]] {
        Dictionary(uniqueKeysWithValues: taskIDs.map { ($0, paths(of: $0)) })
    }

    /// This process's hash of a task id, as `fingerprint` sums it.
    static func hash(of taskID: String) -> Int {
        var id = taskID
        return id.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    private static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()  // seeded per process: a writer cannot aim names at one slot
        hasher.combine(bytes: bytes)
        return hasher.finalize()
    }

    /// Where the task id sits in a folded file's name: `<node>-<id>.json` (`<id>.json` in
    /// rejected/), both valid ids (`LedgerLayout.nodeAndTask`); nil for any other name.
    private static func taskID(inName name: UnsafeRawBufferPointer, rejected: Bool) -> Range<Int>? {
        let suffix = ".json".utf8
        guard name.count > suffix.count, name.suffix(suffix.count).elementsEqual(suffix) else { return nil }
        let stem = 0..<(name.count - suffix.count)
        if rejected {
            return TaskIdentifier.isValid(bytes: UnsafeRawBufferPointer(rebasing: name[stem]), maxBytes: 128) ? stem : nil
        }
        guard let dash = name[stem].firstIndex(of: UInt8(ascii: "-")) else { return nil }
        let id = (dash + 1)..<stem.upperBound
        guard TaskIdentifier.isValid(bytes: UnsafeRawBufferPointer(rebasing: name[..<dash]), maxBytes: NodeIdentifier.maxBytes),
              TaskIdentifier.isValid(bytes: UnsafeRawBufferPointer(rebasing: name[id]), maxBytes: 128) else { return nil }
        return id
    }

    private mutating func add(_ file: File) {
        let hash = withID(of: file) { Self.hash($0) }
        var slot = hash & (slots.count - 1)
        while slots[slot] != 0 {
            let task = Int(slots[slot] - 1)
            if hashes[task] == hash, withID(of: files[Int(firstFile[task])], { mine in withID(of: file) { mine.elementsEqual($0) } }) {
                var linked = file
                linked.next = firstFile[task]
                firstFile[task] = Int32(files.count)
                files.append(linked)
                return
            }
            slot = (slot + 1) & (slots.count - 1)
        }
        slots[slot] = Int32(firstFile.count + 1)
        firstFile.append(Int32(files.count))
        hashes.append(hash)
        files.append(file)
        fingerprint &+= hash
    }

    private func task(_ taskID: String) -> Int? {
        var id = taskID
        return id.withUTF8 { wanted -> Int? in
            let bytes = UnsafeRawBufferPointer(wanted)
            let hash = Self.hash(bytes)
            var slot = hash & (slots.count - 1)
            while slots[slot] != 0 {
                let task = Int(slots[slot] - 1)
                if hashes[task] == hash, withID(of: files[Int(firstFile[task])], { $0.elementsEqual(bytes) }) { return task }
                slot = (slot + 1) & (slots.count - 1)
            }
            return nil
        }
    }

    private func withID<R>(of file: File, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        folders[Int(file.folder)].entries.withName(Int(file.entry)) {
            body(UnsafeRawBufferPointer(rebasing: $0[Int(file.idStart)..<Int(file.idStart + file.idCount)]))
        }
    }
}
