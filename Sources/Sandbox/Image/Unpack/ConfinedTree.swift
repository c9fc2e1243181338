import Glibc
import SandboxSupport

/// The layer's directory tree, reached only through directory fds opened one
/// component at a time with O_NOFOLLOW: no symlink an earlier entry planted is
/// ever followed, and no path string is ever handed to the kernel whole.
///
/// The fds of the last parent chain are kept open, because tars list a
/// directory's entries together: most entries then cost one *at call instead
/// of a walk from the root. Only this unpacker changes the tree (it is a 0700
/// directory of its own), and the only thing it ever removes is the current
/// entry's last component, which the chain (that entry's parents) never
/// holds: the cache cannot go stale.
final class ConfinedTree {
    let root: Int32
    // Own copies: slices would pin EntryPath's buffer and force a copy per parse.
    private var names: [[UInt8]] = []
    private var fds: [Int32] = []

    init(root: Int32) {
        self.root = root
    }

    deinit {
        forgetChain()
    }

    /// Closes the cached chain (the root stays open; it is not ours).
    private func forgetChain() {
        for fd in fds { close(fd) }
        fds.removeAll(keepingCapacity: true)
        names.removeAll(keepingCapacity: true)
    }

    /// The directory holding `path`'s last component. With `create`, missing
    /// directories are made, 0755 like containerd's.
    /// The fd stays owned by the tree: valid until the next call.
    func parent(of path: EntryPath, create: Bool) throws(EntryFailure) -> Int32 {
        try directory(path, components: path.count - 1, create: create)
    }

    /// The directory named by `path`'s first `count` components (cached).
    func directory(_ path: EntryPath, components count: Int, create: Bool) throws(EntryFailure) -> Int32 {
        var matched = 0
        while matched < count && matched < names.count && path.component(matched).elementsEqual(names[matched]) {
            matched += 1
        }
        while fds.count > matched {
            close(fds.removeLast())
            names.removeLast()
        }
        var current = matched == 0 ? root : fds[matched - 1]
        while matched < count {
            current = try openDirectory(in: current, path, index: matched, create: create)
            fds.append(current)
            names.append(Array(path.component(matched)))
            matched += 1
        }
        return current
    }

    /// Like `parent(of:create: false)` but with fds of its own, for a second
    /// path needed while the cached chain is in use (a hardlink's target).
    /// Refusals go through `refusal`, to say they concern that other path.
    func lookUpParent(of path: EntryPath, refusal: (EntryRefusal) -> EntryFailure) throws(EntryFailure) -> DirectoryHandle {
        var handle = DirectoryHandle(fd: root, owned: false)
        for index in 0..<(path.count - 1) {
            let fd: Int32
            do {
                fd = try openDirectory(in: handle.fd, path, index: index, create: false)
            } catch .refused(let reason) {
                throw refusal(reason)
            }
            handle = DirectoryHandle(fd: fd, owned: true)
        }
        return handle
    }

    private func openDirectory(in directory: Int32, _ path: EntryPath, index: Int, create: Bool) throws(EntryFailure) -> Int32 {
        var madeIt = false
        while true {
            let fd = path.withComponent(index) { openat(directory, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if fd >= 0 {
                // A directory no entry names keeps 0755 whatever the umask
                // (an entry naming it later sets its own mode at the end).
                if madeIt { _ = fchmod(fd, 0o755) }
                return fd
            }
            let err = errno
            switch err {
            case EINTR:
                continue
            case ENOENT where create && !madeIt:
                madeIt = true
                if path.withComponent(index, { mkdirat(directory, $0, 0o755) }) != 0 {
                    let err = errno
                    if err != EEXIST {
                        throw .system(operation: "create directory '\(path.display(components: index + 1))'", errno: err)
                    }
                }
            case ENOENT:
                throw .refused(.missing)
            case ELOOP, ENOTDIR:
                // O_NOFOLLOW met a symlink (ELOOP), or the component is a file.
                var info = stat()
                let isLink = path.withComponent(index) { fstatat(directory, $0, &info, AT_SYMLINK_NOFOLLOW) } == 0
                    && info.st_mode & S_IFMT == S_IFLNK
                let at = path.display(components: index + 1)
                throw .refused(isLink ? .crossesSymlink(at: at) : .crossesNonDirectory(at: at))
            default:
                throw .system(operation: "open directory '\(path.display(components: index + 1))'", errno: err)
            }
        }
    }
}

/// A directory fd that closes itself if it owns the fd.
struct DirectoryHandle: ~Copyable {
    let fd: Int32
    let owned: Bool

    deinit {
        if owned { close(fd) }
    }
}
