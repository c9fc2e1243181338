import Glibc

/// Deletes a directory tree without ever following a symlink in it: a task
/// that wrote `upper/x -> /etc` must not make cleanup delete the host's /etc.
/// Best effort; returns false if anything could not be removed.
@discardableResult
func removeTree(_ path: String) -> Bool {
    let parentEnd = path.lastIndex(of: "/") ?? path.startIndex
    let parent = path[..<parentEnd].isEmpty ? "/" : String(path[..<parentEnd])
    let name = String(path[path.index(after: parentEnd)...])
    let dirfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard dirfd >= 0 else { return false }
    defer { close(dirfd) }
    return removeEntry(in: dirfd, name: name, depth: 0)
}

private func removeEntry(in parent: Int32, name: String, depth: Int) -> Bool {
    if unlinkat(parent, name, 0) == 0 || errno == ENOENT { return true }
    guard errno == EISDIR || errno == EPERM, depth < 4096 else { return false }
    let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0, let dir = fdopendir(fd) else {
        if fd >= 0 { close(fd) }
        return false
    }
    var ok = true
    var names: [String] = []
    while let entry = readdir(dir) {
        let child = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if child != "." && child != ".." { names.append(child) }
    }
    for child in names { ok = removeEntry(in: fd, name: child, depth: depth + 1) && ok }
    closedir(dir)
    return unlinkat(parent, name, AT_REMOVEDIR) == 0 && ok
}
