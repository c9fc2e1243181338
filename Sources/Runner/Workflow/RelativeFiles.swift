import Glibc
import Sandbox

/// Files written by a relative path under a directory descriptor — `/inputs`,
/// a restored `/checkpoint`, a download (docs/ARCHITECTURE.md §10): every
/// directory on the way is opened without following a link (and made, 0755,
/// when `creating`), so nothing already there can send a write elsewhere.
enum RelativeFiles {
    /// The directory that holds `path`'s last component, opened from `root`, and that name; nil with errno set.
    static func parent(of path: String, in root: Int32, creating: Bool) -> (fd: Int32, name: String)? {
        var parts = path.split(separator: "/").map(String.init)
        guard let name = parts.popLast() else { errno = EINVAL; return nil }
        var fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        for part in parts {
            if creating, mkdirat(fd, part, 0o755) == 0 { _ = fchmodat(fd, part, 0o755, 0) }
            let next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            close(fd)
            guard next >= 0 else { errno = failure; return nil }
            fd = next
        }
        return (fd, name)
    }

    /// `bytes` as the file `path` under `root`, with `mode` (whatever the umask)
    /// and, given one, `owner`; created exclusively unless `replacing`. nil, or why not.
    static func write(_ bytes: [UInt8], to path: String, in root: Int32, mode: mode_t = 0o644, replacing: Bool = false,
                      creating: Bool = true, owner: UserID? = nil) -> String? {
        guard let (parent, name) = parent(of: path, in: root, creating: creating) else { return String(cString: strerror(errno)) }
        defer { close(parent) }
        let fd = openat(parent, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (replacing ? O_TRUNC : O_EXCL), 0o600)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { FileIO.writeAll(fd, $0) }
        guard written == 0 else { return String(cString: strerror(written)) }
        if let owner, fchown(fd, owner.uid, owner.gid) != 0 { return String(cString: strerror(errno)) }
        guard fchmod(fd, mode) == 0 else { return String(cString: strerror(errno)) }
        return nil
    }
}
