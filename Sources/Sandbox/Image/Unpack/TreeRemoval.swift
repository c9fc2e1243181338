import Glibc

/// Removes `name` in `directory` and everything below it without following a
/// symlink: a half-unpacked layer is full of attacker symlinks, and a
/// path-based `rm -r` would chase them out of the tree. Non-directories are
/// unlinked; directories are opened O_NOFOLLOW and emptied through their fd.
/// Returns 0, or the first errno that stopped it.
func removeTree(in directory: Int32, name: UnsafePointer<CChar>) -> Int32 {
    if unlinkat(directory, name, 0) == 0 { return 0 }
    let err = errno
    guard err == EISDIR else { return err == ENOENT ? 0 : err }
    var fd = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    if fd < 0 && errno == EACCES {
        // A 0000 directory when not root: it is a directory (EISDIR above) and
        // ours, so giving ourselves access back cannot reach anything else.
        _ = fchmodat(directory, name, 0o700, 0)
        fd = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    }
    guard fd >= 0 else { return errno }
    if let failed = emptyDirectory(fd) { return failed }
    return unlinkat(directory, name, AT_REMOVEDIR) == 0 ? 0 : errno
}

/// Removes every entry of the open directory `fd`, then closes it.
/// Returns nil on success or the errno that stopped it.
private func emptyDirectory(_ fd: Int32) -> Int32? {
    guard let stream = fdopendir(fd) else {
        let err = errno
        close(fd)
        return err
    }
    defer { closedir(stream) }
    let dirFD = dirfd(stream)
    // Entries deleted while reading may shift what readdir returns next;
    // passes repeat until one finds nothing left.
    var removedAny = true
    while removedAny {
        removedAny = false
        rewinddir(stream)
        while let entry = readdir(stream) {
            var name = entry.pointee.d_name
            let capacity = MemoryLayout.size(ofValue: name)
            let failed: Int32? = withUnsafePointer(to: &name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: capacity) { child in
                    if child[0] == 0x2e && (child[1] == 0 || (child[1] == 0x2e && child[2] == 0)) { return nil }
                    removedAny = true
                    let err = removeTree(in: dirFD, name: child)
                    return err == 0 ? nil : err
                }
            }
            if let failed { return failed }
        }
    }
    return nil
}
