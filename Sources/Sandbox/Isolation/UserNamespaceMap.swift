import Glibc

/// Writes a one-id mapping for a rootless sandbox: the task's uid/gid inside
/// maps to the invoking user outside. `setgroups` must be denied first, or the
/// kernel refuses an unprivileged gid_map.
enum UserNamespaceMap {
    static func write(pid: pid_t, uid: UInt32, gid: UInt32) throws(SandboxError) {
        try writeFile("/proc/\(pid)/uid_map", "\(uid) \(geteuid()) 1\n")
        try writeFile("/proc/\(pid)/setgroups", "deny\n")
        try writeFile("/proc/\(pid)/gid_map", "\(gid) \(getegid()) 1\n")
    }

    private static func writeFile(_ path: String, _ text: String) throws(SandboxError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .userNamespace(path: path, errno: errno) }
        defer { close(fd) }
        let written = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard written == text.utf8.count else { throw .userNamespace(path: path, errno: errno) }
    }
}
