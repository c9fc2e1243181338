import Glibc
import SandboxSupport

/// Writes a sandbox's id maps while the child waits on its sync socket.
enum UserNamespaceMap {
    /// A root worker's sandbox: ids 0…65535 inside are the leased host range.
    static func write(pid: pid_t, lease: HostIDLease) throws(SandboxError) {
        try writeFile("/proc/\(pid)/uid_map", "0 \(lease.uidStart) \(HostIDPool.rangeSize)\n")
        try writeFile("/proc/\(pid)/gid_map", "0 \(lease.gidStart) \(HostIDPool.rangeSize)\n")
    }

    static func write(pid: pid_t, user: UserID, mapping: RootlessIDMapping) throws(SandboxError) {
        switch mapping {
        case .single:
            // The task's uid/gid inside map to the invoking user outside.
            // `setgroups` must be denied first, or the kernel refuses the gid_map.
            try writeFile("/proc/\(pid)/uid_map", "\(user.uid) \(geteuid()) 1\n")
            try writeFile("/proc/\(pid)/setgroups", "deny\n")
            try writeFile("/proc/\(pid)/gid_map", "\(user.gid) \(getegid()) 1\n")
        case .subordinate(let uids, let gids):
            // Only the setuid helpers may map ranges the user does not own outright.
            try runHelper(RootlessIDMapping.newuidmap, pid: pid, range: uids)
            try runHelper(RootlessIDMapping.newgidmap, pid: pid, range: gids)
        }
    }

    private static func writeFile(_ path: String, _ text: String) throws(SandboxError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .userNamespace(path: path, errno: errno) }
        defer { close(fd) }
        let written = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard written == text.utf8.count else { throw .userNamespace(path: path, errno: errno) }
    }

    /// `newuidmap PID 0 START COUNT`: inside 0… is the range, the user is not mapped.
    private static func runHelper(_ helper: String, pid: pid_t, range: SubordinateRange) throws(SandboxError) {
        do {
            try IDMapHelper.map(pid: pid, helper: helper, [.init(inside: 0, outside: range.start, count: range.count)])
        } catch {
            switch error {
            case .spawn(_, let errno): throw .userNamespace(path: helper, errno: errno)
            case .exited(_, let status): throw .idMapHelper(helper: helper, status: status)
            }
        }
    }
}
