import CArchive
import Glibc
import SandboxSupport

/// Owner, mode and times of one entry, read and checked once.
struct EntryMetadata {
    var permissions: mode_t
    var uid: uid_t
    var gid: gid_t
    /// atime, mtime: the layout utimensat and futimens take.
    var times: (timespec, timespec)

    init(_ entry: OpaquePointer) throws(EntryFailure) {
        let uid = archive_entry_uid(entry)
        let gid = archive_entry_gid(entry)
        // (uid_t)-1 means "leave unchanged" to chown: never a real owner.
        for id in [uid, gid] where id < 0 || id >= Int64(UInt32.max) {
            throw .refused(.idOutOfRange(id))
        }
        self.uid = uid_t(uid)
        self.gid = gid_t(gid)
        permissions = archive_entry_perm(entry) & 0o7777
        let mtime = timespec(tv_sec: archive_entry_mtime(entry), tv_nsec: archive_entry_mtime_nsec(entry))
        let atime = archive_entry_atime_is_set(entry) != 0
            ? timespec(tv_sec: archive_entry_atime(entry), tv_nsec: archive_entry_atime_nsec(entry))
            : mtime
        times = (atime, mtime)
    }

    /// Sets owner (when `chown`), mode and times on an open file or directory.
    /// Owner first: chown clears setuid/setgid, so the mode must come after.
    func apply(to fd: Int32, chown: Bool) throws(EntryFailure) {
        if chown && fchown(fd, uid, gid) != 0 { throw .system(operation: "set owner", errno: errno) }
        if fchmod(fd, permissions) != 0 { throw .system(operation: "set mode", errno: errno) }
        if withTimes({ futimens(fd, $0) }) != 0 { throw .system(operation: "set times", errno: errno) }
    }

    /// Sets owner, mode (unless a symlink: Linux has no symlink modes) and
    /// times on `name` in `directory` without following it if it is a symlink.
    func apply(in directory: Int32, name: UnsafePointer<CChar>, chown: Bool, isSymlink: Bool) throws(EntryFailure) {
        if chown && fchownat(directory, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 {
            throw .system(operation: "set owner", errno: errno)
        }
        if !isSymlink && fchmodat(directory, name, permissions, AT_SYMLINK_NOFOLLOW) != 0 {
            throw .system(operation: "set mode", errno: errno)
        }
        if withTimes({ utimensat(directory, name, $0, AT_SYMLINK_NOFOLLOW) }) != 0 {
            throw .system(operation: "set times", errno: errno)
        }
    }

    /// The two timespecs as the array the calls expect (a homogeneous tuple is
    /// laid out like one), without allocating.
    private func withTimes(_ body: (UnsafePointer<timespec>) -> Int32) -> Int32 {
        withUnsafePointer(to: times) { $0.withMemoryRebound(to: timespec.self, capacity: 2, body) }
    }
}
