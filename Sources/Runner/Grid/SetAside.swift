import Foundation
import Sandbox

/// Where the fold keeps a queue file it cannot place (docs/ARCHITECTURE.md §6):
/// `tasks/rejected/unplaced/<key>-<name>`, the same bytes as a regular file,
/// with `<…>.reason` beside it. A subdirectory, so no name in it ever reads as
/// a task id in `tasks/rejected/` (which would mark that task finished).
/// `key` is the first 16 hex digits of SHA-256(path NUL blob id): the same file
/// always goes to the same place (folds racing or retrying agree), and another
/// file cannot be made to land on it.
enum SetAside {
    static let directory = GridSnapshot.rejectedDirectory + "unplaced/"
    static let reasonSuffix = ".reason"
    /// The most files one fold sets aside; a flood is worked through fold by fold.
    static let maxPerFold = 500
    /// The most bytes of set-aside files one fold reads into memory.
    static let maxBytesPerFold = 16 << 20

    /// Where `file` is kept: the first of `<key>-<name>`, `<key>-<name>-1`, …
    /// that is free on main (or already holds the same blob). nil when all are
    /// taken by other files (a writer squatting on the names): the file stays.
    static func destination(of file: UnplacedFile, in files: MainFiles) -> String? {
        let base = "\(directory)\(key(file))-\(safeName(file.path))"
        for attempt in 0..<8 {
            let candidate = attempt == 0 ? base : "\(base)-\(attempt)"
            let taken = files[candidate], reasonTaken = files[candidate + reasonSuffix]
            if taken == nil && reasonTaken == nil { return candidate }
            if let blob = file.blob, taken == blob { return candidate }
        }
        return nil
    }

    /// The text of the `.reason` file.
    static func reason(for file: UnplacedFile, node: String) -> [UInt8] {
        let kept = file.blob == nil ? "nothing was kept" : "the file is kept beside this reason, byte for byte"
        let text = "\(UntrustedText.shown(file.path, limit: 256)): \(file.reason)\n"
            + "Set aside from the queue by the fold of node \(node): \(kept). "
            + "Fix the name or the file and submit it again (dgrid submit).\n"
        return Array(text.utf8)
    }

    static func key(_ file: UnplacedFile) -> String {
        var hasher = DigestHasher()
        hasher.update(Array(file.path.utf8) + [0] + Array((file.blob?.hex ?? "none").utf8))
        return String(hasher.finalize().hex.prefix(16))
    }

    /// The file's last name with anything but A-Z a-z 0-9 . _ - replaced by `_`,
    /// at most 64 bytes: harmless in any checkout and any terminal.
    static func safeName(_ path: String) -> String {
        let last = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        var name = ""
        for byte in last.utf8.prefix(64) {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                name.append(Character(Unicode.Scalar(byte)))
            default:
                name.append("_")
            }
        }
        // No "..": harmless after the key, but odd to read; never empty.
        while name.contains("..") { name = name.replacingOccurrences(of: "..", with: "._") }
        return name.isEmpty ? "_" : name
    }
}

/// A file under `tasks/queue/` the fold cannot place, with why (`QueuePlacement`).
struct UnplacedFile: Equatable, Sendable {
    let path: String
    /// Its blob on main; nil for what is not a blob (a submodule entry).
    let blob: GitOID?
    let reason: String
}
