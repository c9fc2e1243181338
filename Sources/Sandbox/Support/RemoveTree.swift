import Glibc

/// Removes `name` in `directory` and everything below it without following a
/// symlink: a task's `upper/x -> /etc` or a hostile layer's links must not make
/// cleanup delete the host's files. Non-directories are unlinked; directories
/// are opened O_NOFOLLOW and emptied through their descriptor.
///
/// Iterative, with at most three descriptors open whatever the depth: a task
/// in a writable rootfs can make a chain deeper than any fd limit (or stack),
/// and a removal that recursed with one fd per level stopped there and left
/// the tree behind. Going back up is `openat(.., "..")`, checked against the
/// device and inode recorded on the way down, so a directory moved meanwhile
/// stops the removal instead of leading it elsewhere. A directory on another
/// device (a mount point) is not entered. Returns 0, or the first errno that
/// stopped it.
package func removeTree(in directory: Int32, name: UnsafePointer<CChar>) -> Int32 {
    if unlinkat(directory, name, 0) == 0 { return 0 }
    let err = errno
    guard err == EISDIR else { return err == ENOENT ? 0 : err }

    let topName = Array(UnsafeBufferPointer(start: name, count: strlen(name) + 1))
    guard let top = TreeLevel.enter(topName, in: directory) else { return errno }
    var levels = [top.level]
    var current = top.fd
    while true {
        switch firstSubdirectory(emptying: current) {
        case .failed(let code):
            close(current)
            return code
        case .subdirectory(let child):
            guard let entered = TreeLevel.enter(child, in: current) else {
                let code = errno
                close(current)
                return code
            }
            close(current)
            current = entered.fd
            guard entered.level.device == levels[0].device else {
                close(current)
                return EXDEV
            }
            levels.append(entered.level)
        case .empty:
            let emptied = levels.removeLast()
            guard let parentLevel = levels.last else {
                close(current)
                return unlinkat(directory, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : errno
            }
            let parent = openat(current, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(current)
            guard parent >= 0 else { return errno }
            var info = stat()
            guard fstat(parent, &info) == 0, info.st_dev == parentLevel.device, info.st_ino == parentLevel.inode else {
                close(parent)
                return ESTALE
            }
            if unlinkat(parent, emptied.name, AT_REMOVEDIR) != 0 && errno != ENOENT {
                let code = errno
                close(parent)
                return code
            }
            current = parent
        }
    }
}

/// One directory on the way down: its name in its parent (NUL-terminated
/// bytes, as a tree's names need not be UTF-8) and its identity.
private struct TreeLevel {
    package var name: [CChar]
    package var device: dev_t
    package var inode: ino_t

    package static func enter(_ name: [CChar], in parent: Int32) -> (level: TreeLevel, fd: Int32)? {
        var fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 && errno == EACCES {
            // A 0000 directory when not root: it is a directory (EISDIR from
            // unlinkat) and ours, so giving ourselves access back reaches nothing else.
            _ = fchmodat(parent, name, 0o700, 0)
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            errno = code
            return nil
        }
        return (TreeLevel(name: name, device: info.st_dev, inode: info.st_ino), fd)
    }
}

private enum DirectoryScan {
    case empty
    case subdirectory([CChar])
    case failed(Int32)
}

/// Unlinks the non-directories of the open directory `fd` until it meets a
/// subdirectory (returned, to be entered) or finds the directory empty. Reads
/// through a duplicate, so `fd` stays open for the caller.
private func firstSubdirectory(emptying fd: Int32) -> DirectoryScan {
    let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
    guard copy >= 0 else { return .failed(errno) }
    guard let stream = fdopendir(copy) else {
        let code = errno
        close(copy)
        return .failed(code)
    }
    defer { closedir(stream) }
    // Entries deleted while reading may shift what readdir returns next;
    // passes repeat until one finds nothing left.
    var sawEntries = true
    while sawEntries {
        sawEntries = false
        rewinddir(stream)
        while let entry = readdir(stream) {
            var raw = entry.pointee.d_name
            let child: [CChar] = withUnsafeBytes(of: &raw) { bytes in
                Array(bytes.prefix { $0 != 0 }).map { CChar(bitPattern: $0) } + [0]
            }
            if child == [0x2e, 0] || child == [0x2e, 0x2e, 0] { continue }
            sawEntries = true
            if unlinkat(fd, child, 0) == 0 || errno == ENOENT { continue }
            if errno == EISDIR { return .subdirectory(child) }
            return .failed(errno)
        }
    }
    return .empty
}
