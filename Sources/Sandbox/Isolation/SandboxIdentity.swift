import CShims
import Glibc
import SandboxSupport

/// Whose ids a sandbox runs with (docs/THREATS.md, T4). Every sandbox has a
/// user namespace: as root, its ids 0…65535 are a host range leased for the
/// run; rootless, the user's subordinate ids or, without them, the user's own
/// one id.
enum SandboxIdentity: Sendable {
    case root(HostIDPool)
    case rootless(RootlessIDMapping)

    /// Whether the namespace maps a whole range (so pid 1 becomes its root
    /// and may clear supplementary groups), not one id.
    var mapsARange: Bool {
        switch self {
        case .root, .rootless(.subordinate): return true
        case .rootless(.single): return false
        }
    }

    /// Refuses a task user the mapping cannot hold, and a one-id mapping that
    /// would carry the user's supplementary groups into the sandbox.
    func check(_ user: UserID) throws(SandboxError) {
        switch self {
        case .root:
            guard user.uid < HostIDPool.rangeSize, user.gid < HostIDPool.rangeSize else {
                throw .userNotMapped(user: user, mapping: "ids 0-\(HostIDPool.rangeSize - 1) of the sandbox's user namespace")
            }
        case .rootless(let mapping):
            guard mapping.maps(user) else { throw .userNotMapped(user: user, mapping: mapping.description) }
            if case .single = mapping {
                let groups = RootlessIDMapping.supplementaryGroups()
                guard groups.isEmpty else { throw .supplementaryGroups(groups) }
            }
        }
    }

    /// As root, the host id range for one run; rootless, nil.
    func lease() throws(SandboxError) -> HostIDLease? {
        guard case .root(let pool) = self else { return nil }
        return try pool.lease()
    }
}


/// The trees a root worker's sandbox root is built from, cloned detached and
/// idmapped to the sandbox's user namespace (dgrid_tree_clone), for sending
/// to the child with its go byte.
enum RootTrees {
    static func clone(_ paths: [String], forUserNamespaceOf pid: pid_t, readonly: Bool,
                      idmapped: inout Bool) throws(SandboxError) -> [Int32] {
        let nsPath = "/proc/\(pid)/ns/user"
        let userns = open(nsPath, O_RDONLY | O_CLOEXEC)
        guard userns >= 0 else { throw .userNamespace(path: nsPath, errno: errno) }
        defer { close(userns) }
        var trees: [Int32] = []
        for path in paths {
            var mapped: Int32 = 1
            let fd = dgrid_tree_clone(path, userns, readonly ? 1 : 0, &mapped)
            guard fd >= 0 else {
                trees.forEach { close($0) }
                throw .rootfs(path: path, reason: "cloning it for the sandbox: \(errnoText(-fd))")
            }
            if mapped == 0 { idmapped = false }
            trees.append(fd)
        }
        return trees
    }

    /// One tree per volume, in order: a read-only clone of its host directory,
    /// or a writable clone of its scratch tmpfs. Both idmapped, or refused: a
    /// volume whose files showed as nobody's would be unwritable to the task.
    static func clone(_ volumes: [SandboxVolume], forUserNamespaceOf pid: pid_t) throws(SandboxError) -> [Int32] {
        guard !volumes.isEmpty else { return [] }
        let nsPath = "/proc/\(pid)/ns/user"
        let userns = open(nsPath, O_RDONLY | O_CLOEXEC)
        guard userns >= 0 else { throw .userNamespace(path: nsPath, errno: errno) }
        defer { close(userns) }
        var trees: [Int32] = []
        for volume in volumes {
            var mapped: Int32 = 1
            let fd: Int32
            switch volume.source {
            case .readOnly(let path): fd = dgrid_tree_clone(path, userns, 1, &mapped)
            case .scratch(let scratch, let readOnly): fd = dgrid_tree_clone_at(scratch.descriptor, "", userns, readOnly ? 1 : 0, &mapped)
            }
            guard fd >= 0, mapped != 0 else {
                if fd >= 0 { close(fd) }
                trees.forEach { close($0) }
                throw .volume("/\(volume.name): " + (fd < 0 ? errnoText(-fd) : "its filesystem cannot be idmapped (tmpfs needs Linux 6.3 or later)"))
            }
            trees.append(fd)
        }
        return trees
    }
}
