import CGit2
#if canImport(Glibc)
import Glibc
#endif

/// The blobs directly in one tree, kept as the tree holds them: every name in
/// one byte buffer, every id in another, found by binary search. A long-lived
/// grid's finished folders hold nearly all of main's files; a String, an id
/// and a dictionary slot per file cost a fold more than its own work
/// (docs/ARCHITECTURE.md §10), so these are made only for the files a reader
/// asks about.
public struct FolderEntries: Sendable {
    /// Names one after another; entry i's is `names[starts[i]..<starts[i + 1]]`.
    private var names: [UInt8] = []
    private var starts: [Int32] = [0]
    /// 20 bytes per entry.
    private var ids: [UInt8] = []
    /// Entry indices in name order: the tree's own order unless a writer crafted it otherwise.
    private var order: [Int32] = []

    public init() {}

    public var count: Int { starts.count - 1 }

    /// Adds an entry (`finish` sorts them once all are in).
    mutating func append(name: UnsafeRawBufferPointer, id: git_oid) {
        names.append(contentsOf: name)
        starts.append(Int32(names.count))
        withUnsafeBytes(of: id) { ids.append(contentsOf: $0.prefix(20)) }
    }

    mutating func append(name: String, id: GitOID) {
        var name = name
        name.withUTF8 { append(name: UnsafeRawBufferPointer($0), id: id.raw) }
    }

    /// Orders the entries by name, once: a tree from Git is sorted already (checked in one pass).
    mutating func finish() {
        var order = (0..<Int32(count)).map { $0 }
        let sorted = order.indices.dropFirst().allSatisfy { compare(Int(order[$0 - 1]), Int(order[$0])) < 0 }
        if !sorted { order.sort { compare(Int($0), Int($1)) < 0 } }
        self.order = order
    }

    /// The id of the entry named `name`; nil when there is none.
    public func id(named name: Substring) -> GitOID? {
        var name = name
        return name.withUTF8 { wanted in
            var low = 0, high = order.count
            while low < high {
                let middle = (low + high) / 2, entry = Int(order[middle])
                let result = withName(entry) { Self.compare($0, UnsafeRawBufferPointer(wanted)) }
                if result == 0 { return id(at: entry) }
                if result < 0 { low = middle + 1 } else { high = middle }
            }
            return nil
        }
    }

    /// How many entries' names satisfy `test` (given as bytes).
    public func count(where test: (UnsafeRawBufferPointer) -> Bool) -> Int {
        (0..<count).reduce(0) { $0 + (withName($1, test) ? 1 : 0) }
    }

    /// Entry `index`'s name as bytes, for the span of `body`.
    public func withName<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        names.withUnsafeBytes { all in
            body(UnsafeRawBufferPointer(rebasing: all[Int(starts[index])..<Int(starts[index + 1])]))
        }
    }

    public func name(_ index: Int) -> String {
        withName(index) { String(decoding: $0, as: UTF8.self) }
    }

    public func id(at index: Int) -> GitOID {
        var oid = git_oid()
        ids.withUnsafeBytes { all in
            withUnsafeMutableBytes(of: &oid) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[index * 20..<index * 20 + 20])) }
        }
        return GitOID(raw: oid)
    }

    private func compare(_ left: Int, _ right: Int) -> Int32 {
        withName(left) { a in withName(right) { b in Self.compare(a, b) } }
    }

    /// Byte order, a shorter prefix first (Git's order for blob names).
    static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int32 {
        let shared = min(a.count, b.count)
        if shared > 0 {
            let result = memcmp(a.baseAddress!, b.baseAddress!, shared)
            if result != 0 { return result }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }
}

/// A commit's files: most as path → id, and the folders asked for as their entries.
public struct TreeListing: Sendable {
    /// Every blob outside `folders`, and those in subtrees of them.
    public var files: [String: GitOID]
    /// Folder path with its trailing '/' → the blobs directly in it.
    public var folders: [String: FolderEntries]

    public init(files: [String: GitOID], folders: [String: FolderEntries]) {
        self.files = files
        self.folders = folders
    }
}
