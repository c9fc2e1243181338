import Glibc

/// Walks a directory path one component at a time, each opened with
/// openPathOnly | O_DIRECTORY | O_NOFOLLOW relative to the one before and checked
/// with fstat on that descriptor: nothing is looked up by a path string that a
/// symlink swapped in between could redirect.
///
/// Two rules. Parents (everything above the state directory) must be owned by
/// root or by this user, and not writable by group or others unless sticky (as
/// /tmp is: others cannot rename or delete what is ours there); a symlink among
/// them is followed only when root or this user owns it, since the directory
/// holding it passed the same test and nobody else can change it. dgrid's own
/// directories (the state directory and below) must be real directories, never
/// symlinks, owned by this user and not writable by group or others; missing
/// ones are created 0700 (containerd CVE-2021-41103: world-readable state let
/// other users reach into image layers).
/// O_PATH: a descriptor that names a directory without reading it (so a parent
/// with search permission only, like a 0711 home, can be walked). Glibc's Swift
/// module hides it behind _GNU_SOURCE; the value is the same on x86_64 and arm64.
private let openPathOnly: Int32 = 0o10000000

package final class TrustedDirectoryWalk {
    private var fd: Int32
    private let euid = geteuid()
    /// The path as walked so far, symlinks by their own names, for messages.
    private var walked = ""
    private var symlinksFollowed = 0

    /// The kernel's own limit on symlinks in one lookup (ELOOP past it).
    private static let maximumSymlinks = 40

    package init() throws(StateDirectoryError) {
        fd = open("/", openPathOnly | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StateDirectoryError(path: "/", errno: errno) }
        try checkParent(path: "/")
    }

    deinit { close(fd) }

    /// Walks down `path` (absolute) as parents. Returns false when a component
    /// is missing and `create` is false; creates missing ones 0700 otherwise.
    package func enterParents(_ path: String, create: Bool) throws(StateDirectoryError) -> Bool {
        // A stack, last component on top, so a symlink's target can be pushed in its place.
        var pending = path.split(separator: "/").map(String.init).reversed().map { $0 }
        while let name = pending.popLast() {
            if name == "." { continue }
            let next = (walked == "/" ? "" : walked) + "/" + name
            var info = stat()
            if fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0 {
                guard errno == ENOENT else { throw StateDirectoryError(path: next, errno: errno) }
                guard create else { return false }
                guard mkdirat(fd, name, 0o700) == 0 || errno == EEXIST else {
                    throw StateDirectoryError(path: next, errno: errno)
                }
            } else if info.st_mode & S_IFMT == S_IFLNK {
                guard info.st_uid == 0 || info.st_uid == euid else {
                    throw StateDirectoryError(path: next, problem: .untrustedSymlink(uid: info.st_uid))
                }
                symlinksFollowed += 1
                guard symlinksFollowed <= Self.maximumSymlinks else {
                    throw StateDirectoryError(path: next, problem: .tooManySymlinks)
                }
                let target = try readLink(name, shownAs: next)
                if target.hasPrefix("/") {
                    try replace(with: open("/", openPathOnly | O_DIRECTORY | O_CLOEXEC), shownAs: "/")
                    try checkParent(path: "/")
                }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
                continue
            }
            try replace(with: openat(fd, name, openPathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), shownAs: next)
            try checkParent(path: next)
        }
        return true
    }

    /// Enters (creating it 0700 when missing and `create`) one of dgrid's own
    /// directories, `path` naming it in messages. Returns false when missing and not `create`.
    package func enterOwn(_ name: String, path: String, create: Bool) throws(StateDirectoryError) -> Bool {
        guard !name.isEmpty, name != ".", name != ".." else {
            throw StateDirectoryError(path: path, problem: .invalidName(name))
        }
        var info = stat()
        if fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0 {
            guard errno == ENOENT else { throw StateDirectoryError(path: path, errno: errno) }
            guard create else { return false }
            guard mkdirat(fd, name, 0o700) == 0 || errno == EEXIST else {
                throw StateDirectoryError(path: path, errno: errno)
            }
        } else if info.st_mode & S_IFMT == S_IFLNK {
            throw StateDirectoryError(path: path, problem: .symbolicLink)
        }
        let child = openat(fd, name, openPathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if child < 0 && (errno == ENOTDIR || errno == ELOOP) {
            // Swapped since the fstatat, or a file: say which.
            var now = stat()
            let isLink = fstatat(fd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_mode & S_IFMT == S_IFLNK
            throw StateDirectoryError(path: path, problem: isLink ? .symbolicLink : .notADirectory)
        }
        try replace(with: child, shownAs: path)
        var opened = stat()
        guard fstat(fd, &opened) == 0 else { throw StateDirectoryError(path: path, errno: errno) }
        guard opened.st_mode & S_IFMT == S_IFDIR else { throw StateDirectoryError(path: path, problem: .notADirectory) }
        guard opened.st_uid == euid else {
            throw StateDirectoryError(path: path, problem: .ownedByAnotherUser(uid: opened.st_uid))
        }
        guard opened.st_mode & 0o022 == 0 else {
            throw StateDirectoryError(path: path, problem: .writableByOthers(mode: opened.st_mode & 0o7777))
        }
        return true
    }

    private func replace(with newFD: Int32, shownAs path: String) throws(StateDirectoryError) {
        guard newFD >= 0 else {
            let code = errno
            throw StateDirectoryError(path: path, problem: code == ENOTDIR ? .notADirectory : .system(errno: code))
        }
        close(fd)
        fd = newFD
        walked = path
    }

    private func checkParent(path: String) throws(StateDirectoryError) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StateDirectoryError(path: path, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw StateDirectoryError(path: path, problem: .notADirectory) }
        let trustedOwner = info.st_uid == 0 || info.st_uid == euid
        let othersCannotSwap = info.st_mode & 0o022 == 0 || info.st_mode & S_ISVTX != 0
        guard trustedOwner && othersCannotSwap else {
            throw StateDirectoryError(path: path, problem: .untrustedParent(uid: info.st_uid, mode: info.st_mode & 0o7777))
        }
    }

    private func readLink(_ name: String, shownAs path: String) throws(StateDirectoryError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(fd, name, &buffer, buffer.count - 1)
        guard count > 0 else { throw StateDirectoryError(path: path, errno: count == 0 ? ENOENT : errno) }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
