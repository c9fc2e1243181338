import Glibc
import SandboxSupport

/// Small, errno-honest file helpers for the image store. Every path here is
/// dgrid's own state (`$DGRID_HOME/...`, 0700), never content of an image, so
/// opening by path is fine; image content is only ever read as blobs.
package enum FileIO {
    /// `open` retried on EINTR; -1 with errno otherwise.
    package static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 || errno != EINTR { return fd }
        }
    }

    package static func openat(_ dir: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        while true {
            let fd = Glibc.openat(dir, name, flags | O_CLOEXEC, mode)
            if fd >= 0 || errno != EINTR { return fd }
        }
    }

    /// Reads up to `buffer.count` bytes; retried on EINTR. -1 with errno on failure.
    package static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 || errno != EINTR { return n }
        }
    }

    /// Writes all of `bytes`; returns 0 or the errno that stopped it.
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            offset += n
        }
        return 0
    }

    /// The whole file at `path`, refused beyond `limit` bytes.
    package static func readFile(_ path: String, limit: Int, what: String) throws(ImageError) -> [UInt8] {
        let fd = try openRegular(path)
        defer { close(fd) }
        return try readAll(fd, limit: limit, what: what, path: path)
    }

    /// Opens `path` for reading only if it is a regular file (symlinks to
    /// one are fine: the content is verified, not trusted). O_NONBLOCK until
    /// checked, so a FIFO planted in an image layout cannot hang an import.
    package static func openRegular(_ path: String) throws(ImageError) -> Int32 {
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw .system(operation: "open", path: path, errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let err = errno
            close(fd)
            throw .system(operation: "stat", path: path, errno: err)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .importSource(path: path, reason: "not a regular file")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    package static func readAll(_ fd: Int32, limit: Int, what: String, path: String) throws(ImageError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, into: $0) }
            if n < 0 { throw .system(operation: "read", path: path, errno: errno) }
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
            if result.count > limit {
                throw .blobTooLarge(digest: nil, what: what, size: Int64(result.count), limit: Int64(limit))
            }
        }
    }

    package static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    package static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Names in a directory (without "." and ".."), or nil with errno.
    package static func list(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// fsync on a directory, so a rename in it survives a crash.
    package static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    /// A name no other writer picks: pid, time and randomness.
    package static func uniqueSuffix() -> String {
        "\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
    }

    /// Replaces `path` with `bytes` atomically: a 0600 temp file in the same
    /// directory (O_EXCL), fsync, rename. Readers see the old or the new file,
    /// never a half-written one.
    package static func writeAtomically(_ bytes: [UInt8], to path: String) throws(ImageError) {
        let directory = parent(of: path)
        let temp = "\(directory)/.tmp-\(uniqueSuffix())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .system(operation: "create", path: temp, errno: errno) }
        // Held until closed: gc removes only temporaries nobody holds.
        _ = flock(fd, LOCK_EX | LOCK_NB)
        let failed = bytes.withUnsafeBytes { writeAll(fd, $0) }
        let synced = failed == 0 ? (fsync(fd) == 0 ? 0 : errno) : failed
        close(fd)
        guard synced == 0 else {
            unlink(temp)
            throw .system(operation: "write", path: temp, errno: synced)
        }
        guard rename(temp, path) == 0 else {
            let err = errno
            unlink(temp)
            throw .system(operation: "rename to", path: path, errno: err)
        }
        syncDirectory(directory)
    }

    /// Removes `.ingest-*` and `.tmp-*` files in `directory` whose writer is
    /// gone (its flock is free): what a crash mid-write left. Returns how many.
    package static func removeAbandonedTemporaries(in directory: String) -> Int {
        var removed = 0
        for name in list(directory) ?? [] where name.hasPrefix(".ingest-") || name.hasPrefix(".tmp-") {
            let path = "\(directory)/\(name)"
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            guard fd >= 0 else { continue }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(path) == 0 { removed += 1 }
            close(fd)
        }
        return removed
    }

    package static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// An flock held for as long as this value lives (or until `release()`).
/// flock locks belong to the open file description, so two opens in one
/// process exclude each other just as two processes do.
package struct FileLock: ~Copyable {
    private let fd: Int32

    package enum Mode {
        case shared, exclusive
    }

    /// Blocks until the lock is held. The lock file is created (0600) if missing.
    package init(path: String, mode: Mode) throws(ImageError) {
        guard let lock = try Self.take(path: path, mode: mode, wait: true) else {
            throw .system(operation: "lock", path: path, errno: EWOULDBLOCK)
        }
        self = lock
    }

    private init(fd: Int32) {
        self.fd = fd
    }

    /// nil when another holder has a conflicting lock and `wait` is false.
    package static func take(path: String, mode: Mode, wait: Bool) throws(ImageError) -> FileLock? {
        let fd = FileIO.open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .system(operation: "open lock file", path: path, errno: errno) }
        let operation = (mode == .shared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB)
        while flock(fd, operation) != 0 {
            let err = errno
            if err == EINTR { continue }
            close(fd)
            if err == EWOULDBLOCK { return nil }
            throw .system(operation: "lock", path: path, errno: err)
        }
        return FileLock(fd: fd)
    }

    deinit {
        close(fd)
    }
}
