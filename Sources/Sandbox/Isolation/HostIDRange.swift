import Glibc
import SandboxSupport

/// The host ids a root worker's sandbox runs as (docs/THREATS.md, T4): every
/// sandbox gets a user namespace whose ids 0…65535 map to a range of host ids
/// no account has, leased for that run alone, so no two running tasks (of
/// this worker or of any other dgrid on the host) share a uid, and the
/// task's root is never host root nor any real host user.
///
/// The pool is the `dgrid` entry of /etc/subuid and /etc/subgid when the
/// operator made one (`dgrid:START:COUNT`, COUNT a multiple of 65536), else
/// 1024 ranges from 0x70000000 (1879048192), above systemd-nspawn's
/// container ranges and below 2^31. A range is held by an flock on
/// /run/dgrid/idmap/<n>.lock for the run: a crashed worker's locks go with it.
public struct HostIDPool: Sendable, Equatable {
    public static let rangeSize: UInt32 = 65536
    public static let defaultStart: UInt32 = 0x7000_0000
    public static let defaultRanges: UInt32 = 1024

    let uidStart: UInt32
    let gidStart: UInt32
    let ranges: UInt32
    let lockDirectory: String

    public static func forThisHost(subuidFile: String = "/etc/subuid", subgidFile: String = "/etc/subgid",
                                   lockDirectory: String = "/run/dgrid/idmap") -> HostIDPool {
        let uids = SubordinateRange.lookup(file: subuidFile, uid: UInt32.max, name: "dgrid")
        let gids = SubordinateRange.lookup(file: subgidFile, uid: UInt32.max, name: "dgrid")
        if let uids, let gids, uids.count >= rangeSize, gids.count >= rangeSize {
            return HostIDPool(uidStart: uids.start, gidStart: gids.start,
                              ranges: min(uids.count, gids.count) / rangeSize, lockDirectory: lockDirectory)
        }
        return HostIDPool(uidStart: defaultStart, gidStart: defaultStart, ranges: defaultRanges, lockDirectory: lockDirectory)
    }

    /// Takes a free range for one run.
    func lease() throws(SandboxError) -> HostIDLease {
        try ensureLockDirectory()
        // Start where this process is unlikely to meet its neighbours.
        let first = UInt32(truncatingIfNeeded: UInt(bitPattern: Int(getpid())) &* 2_654_435_761) % ranges
        for step in 0..<ranges {
            let index = (first + step) % ranges
            let path = "\(lockDirectory)/\(index).lock"
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw .idRange(path: path, errno: errno) }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                return HostIDLease(lockFd: fd, uidStart: uidStart + index * Self.rangeSize,
                                   gidStart: gidStart + index * Self.rangeSize)
            }
            close(fd)
        }
        throw .idRangesExhausted(count: ranges)
    }

    /// /run/dgrid/idmap, root's own, 0700; refused if someone else made it.
    private func ensureLockDirectory() throws(SandboxError) {
        var path = ""
        for component in lockDirectory.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .idRange(path: path, errno: errno) }
        }
        var st = stat()
        guard lstat(lockDirectory, &st) == 0 else { throw .idRange(path: lockDirectory, errno: errno) }
        guard st.st_mode & S_IFMT == S_IFDIR, st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else {
            throw .idRange(path: lockDirectory, errno: EPERM)
        }
    }
}

/// One run's host id range, held until `release()` (or this process's end).
final class HostIDLease {
    let uidStart: UInt32
    let gidStart: UInt32
    private var lockFd: Int32

    init(lockFd: Int32, uidStart: UInt32, gidStart: UInt32) {
        self.lockFd = lockFd
        self.uidStart = uidStart
        self.gidStart = gidStart
    }

    func release() {
        if lockFd >= 0 { close(lockFd) }
        lockFd = -1
    }

    deinit { release() }
}
