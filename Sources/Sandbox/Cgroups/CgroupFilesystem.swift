import Glibc
import SandboxSupport

/// An errno from one cgroup file operation, captured right after the syscall.
struct CgroupErrno: Error, Equatable {
    let code: Int32
}

/// The few file operations the drivers perform. The kernel version is one or two
/// syscalls each; tests substitute a temp-directory tree that acts like cgroupfs
/// (control files appear on mkdir, SIGKILL empties `cgroup.procs`) so they can
/// check exact writes without touching real processes.
protocol CgroupFilesystem: Sendable {
    func makeDirectory(_ path: String) throws(CgroupErrno)
    func removeDirectory(_ path: String) throws(CgroupErrno)
    /// Writes `value` with a single write(2): cgroupfs parses each write on its own.
    func write(_ value: String, to path: String) throws(CgroupErrno)
    /// The whole file, or nil when it cannot be read.
    func read(_ path: String) -> String?
    func exists(_ path: String) -> Bool
    func isWritable(_ path: String) -> Bool
    /// Names of the directories directly inside `path`, sorted.
    func subdirectories(of path: String) -> [String]
    func kill(_ pid: pid_t, _ signal: Int32) throws(CgroupErrno)
    /// An open write descriptor (close-on-exec) of a control file, for a
    /// write made later by someone else (the sandbox's pid 1).
    func openForWriting(_ path: String) throws(CgroupErrno) -> Int32
}

extension CgroupFilesystem {
    func openForWriting(_ path: String) throws(CgroupErrno) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CgroupErrno(code: errno) }
        return fd
    }
}

/// The real thing: Glibc calls, no Foundation, so creating a group stays a handful of syscalls.
struct KernelCgroupFilesystem: CgroupFilesystem {
    func makeDirectory(_ path: String) throws(CgroupErrno) {
        if mkdir(path, 0o755) != 0 { throw CgroupErrno(code: errno) }
    }

    func removeDirectory(_ path: String) throws(CgroupErrno) {
        if rmdir(path) != 0 { throw CgroupErrno(code: errno) }
    }

    func write(_ value: String, to path: String) throws(CgroupErrno) {
        // O_TRUNC is a no-op on cgroupfs but lets the same code write plain files in tests.
        let fd = Self.retryingEINTR { open(path, O_WRONLY | O_TRUNC | O_CLOEXEC) }
        guard fd >= 0 else { throw CgroupErrno(code: errno) }
        defer { close(fd) }
        var length = 0
        let written = value.withCString { bytes in
            length = strlen(bytes)
            return Self.retryingEINTR { Glibc.write(fd, bytes, length) }
        }
        guard written >= 0 else { throw CgroupErrno(code: errno) }
        if written != length { throw CgroupErrno(code: EIO) }
    }

    func read(_ path: String) -> String? {
        let fd = Self.retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        let ok = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { buffer -> Bool in
            while true {
                let n = Self.retryingEINTR { Glibc.read(fd, buffer.baseAddress, buffer.count) }
                if n < 0 { return false }
                if n == 0 { return true }
                bytes.append(contentsOf: buffer[0..<n])
            }
        }
        return ok ? String(decoding: bytes, as: UTF8.self) : nil
    }

    func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    func isWritable(_ path: String) -> Bool {
        // access() honours read-only mounts (EROFS) even for root.
        access(path, W_OK) == 0
    }

    func subdirectories(of path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            switch Int(entry.pointee.d_type) {
            case Int(DT_DIR):
                names.append(name)
            case Int(DT_UNKNOWN):
                var info = stat()
                if stat(path + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { names.append(name) }
            default:
                continue
            }
        }
        return names.sorted()
    }

    func kill(_ pid: pid_t, _ signal: Int32) throws(CgroupErrno) {
        if Glibc.kill(pid, signal) != 0 { throw CgroupErrno(code: errno) }
    }

    private static func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
        var result: T
        repeat { result = call() } while result < 0 && errno == EINTR
        return result
    }
}
