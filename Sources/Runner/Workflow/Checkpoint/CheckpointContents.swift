import Glibc
import Sandbox

/// What `/checkpoint` holds, copied out of the task's tmpfs through the worker's
/// descriptor of it (`ScratchVolume`), or put back into a fresh one
/// (docs/ARCHITECTURE.md §10). Every name is the task's: nothing is followed (no
/// symlink, no mount), and only directories, regular files and symlinks are
/// kept; anything else is counted as skipped.
struct CheckpointContents: Sendable {
    struct File: Sendable {
        let path: String
        let mode: UInt32
        let bytes: [UInt8]
    }

    var directories: [String] = []
    var files: [File] = []
    var links: [CheckpointManifest.Link] = []
    /// Regular files listed but not read (`read(…, readingContents: false)`): /output's, read later one by one.
    var listed: [(path: String, size: UInt64)] = []
    /// Entries not kept, by why ("special file", "name not UTF-8", "too deep", "past 100000 entries").
    var skippedKinds: [String: Int] = [:]
    var skipped = 0

    /// At most this many entries are kept; a task that makes more has the rest skipped.
    static let maxEntries = 100_000

    var bytes: UInt64 { files.reduce(0) { $0 + UInt64($1.bytes.count) } }

    /// The tree under `root` (a directory descriptor), at most `limit` bytes of file content.
    /// Without `readingContents` regular files are only `listed` (path and size), not read.
    static func read(from root: Int32, limit: UInt64, readingContents: Bool = true) -> Result<CheckpointContents, CheckpointRefusal> {
        var contents = CheckpointContents()
        var total: UInt64 = 0
        var entries = 0
        // (directory descriptor, its path with a trailing "/" or "", depth)
        guard let top = reopen(root) else { return .failure(.unreadable("the checkpoint directory: \(String(cString: strerror(errno)))")) }
        var pending: [(Int32, String, Int)] = [(top, "", 0)]
        while let (fd, prefix, depth) = pending.popLast() {
            guard let directory = fdopendir(fd) else {
                close(fd)
                return .failure(.unreadable("\(prefix): \(String(cString: strerror(errno)))"))
            }
            defer { closedir(directory) }
            let dirfd = Glibc.dirfd(directory)
            while let entry = readdir(directory) {
                let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                    pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(validatingCString: $0) }
                }
                guard let name else { contents.skip("name not UTF-8"); continue }
                if name == "." || name == ".." { continue }
                entries += 1
                let path = prefix + name
                guard entries <= maxEntries else { contents.skip("past \(maxEntries) entries"); continue }
                guard CheckpointPath.problem(path) == nil else { contents.skip("name not kept"); continue }
                var st = stat()
                guard fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { contents.skip("unreadable"); continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    guard depth + 1 < CheckpointPath.maxDepth else { contents.skip("too deep"); continue }
                    let child = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    guard child >= 0 else { contents.skip("unreadable"); continue }
                    contents.directories.append(path)
                    pending.append((child, path + "/", depth + 1))
                case S_IFREG:
                    total += UInt64(st.st_size)
                    guard total <= limit else { return .failure(.tooLarge(bytes: total, capacity: limit)) }
                    guard readingContents else {
                        contents.listed.append((path, UInt64(st.st_size)))
                        continue
                    }
                    guard let bytes = readFile(dirfd, name, size: Int(st.st_size)) else {
                        return .failure(.unreadable("\(UntrustedText.quoted(path, limit: 200)): \(String(cString: strerror(errno)))"))
                    }
                    contents.files.append(File(path: path, mode: UInt32(st.st_mode) & 0o777, bytes: bytes))
                case S_IFLNK:
                    var buffer = [CChar](repeating: 0, count: 4097)
                    let n = readlinkat(dirfd, name, &buffer, 4096)
                    guard n > 0 else { contents.skip("unreadable"); continue }
                    let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    contents.links.append(CheckpointManifest.Link(path: path, target: target))
                default:
                    contents.skip("special file")
                }
            }
        }
        return .success(contents)
    }

    private mutating func skip(_ why: String) {
        skipped += 1
        skippedKinds[why, default: 0] += 1
    }

    /// Puts the contents under `root`, owned by `owner` (the task's ids as the
    /// sandbox shows them: its view of the tmpfs is idmapped). Nothing that is
    /// there is followed: every directory is opened without following links.
    func restore(into root: Int32, owner: UserID) -> CheckpointRefusal? {
        func fail(_ path: String) -> CheckpointRefusal {
            .unreadable("restoring \(UntrustedText.quoted(path, limit: 200)): \(String(cString: strerror(errno)))")
        }
        for path in directories {
            guard let (parent, name) = RelativeFiles.parent(of: path, in: root, creating: false) else { return fail(path) }
            defer { close(parent) }
            guard mkdirat(parent, name, 0o755) == 0 || errno == EEXIST,
                  fchownat(parent, name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) == 0 else { return fail(path) }
        }
        for file in files {
            if let why = RelativeFiles.write(file.bytes, to: file.path, in: root, mode: mode_t(file.mode), creating: false, owner: owner) {
                return .unreadable("restoring \(UntrustedText.quoted(file.path, limit: 200)): \(why)")
            }
        }
        for link in links {
            guard let (parent, name) = RelativeFiles.parent(of: link.path, in: root, creating: false) else { return fail(link.path) }
            defer { close(parent) }
            guard symlinkat(link.target, parent, name) == 0,
                  fchownat(parent, name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) == 0 else { return fail(link.path) }
        }
        return nil
    }

    private static func reopen(_ directory: Int32) -> Int32? {
        let fd = openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        return fd >= 0 ? fd : nil
    }

    private static func readFile(_ directory: Int32, _ name: String, size: Int) -> [UInt8]? {
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: size)
        var got = 0
        while got < size {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, size - got) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            got += n
        }
        // Frozen while copied: a file cannot shrink under us; one that did is read as it is now.
        return Array(bytes[0..<got])
    }
}
