import Glibc
import SandboxSupport

/// A small JSON state file (`images/index.json`, `images/allowlist.json`)
/// that several dgrid processes may update. Readers read it without a lock:
/// writes replace it atomically (temp + fsync + rename), so a reader sees a
/// whole old or a whole new file. Writers serialize read-modify-write with an
/// flock on `FILE.lock`, so two concurrent `allow`s or imports never lose an
/// update.
struct LockedFile: Sendable {
    let path: String

    static let limit = 16 << 20

    var lockPath: String { path + ".lock" }

    /// The current content, or nil when the file does not exist.
    func read(what: String) throws(ImageError) -> [UInt8]? {
        do {
            return try FileIO.readFile(path, limit: Self.limit, what: what)
        } catch {
            if case .system(_, _, ENOENT) = error { return nil }
            throw error
        }
    }

    /// Runs `body` on the current content under the exclusive lock; writes
    /// what it returns (nothing when it returns nil).
    func update<Result>(what: String, _ body: ([UInt8]?) throws(ImageError) -> ([UInt8]?, Result)) throws(ImageError) -> Result {
        let lock = try FileLock(path: lockPath, mode: .exclusive)
        let current = try read(what: what)
        let (replacement, result) = try body(current)
        if let replacement {
            try FileIO.writeAtomically(replacement, to: path)
        }
        _ = consume lock
        return result
    }
}

/// UTC timestamps as RFC 3339 text ("2025-01-31T12:00:00Z").
public enum Timestamp {
    public static func now() -> String {
        format(time(nil))
    }

    static func format(_ seconds: time_t) -> String {
        var value = seconds
        var parts = tm()
        gmtime_r(&value, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
