import CShims
import Foundation
import Glibc
import Sandbox

/// Puts a static site at a directory in one step (docs/ARCHITECTURE.md §12): the
/// files are written and synced in a new directory beside it, which then
/// takes the directory's place by `renameat2(RENAME_EXCHANGE)` — a web server
/// serving the directory sees the old site or the new one, never half of one —
/// and the old tree is removed. A directory that holds anything but a site
/// dgrid wrote (its `.dgrid-dashboard` marker) is refused, so a mistyped `--out`
/// can never replace someone's files.
public enum SitePublisher {
    /// Written into every site; a directory is replaced only when it has one (or is empty).
    public static let marker = ".dgrid-dashboard"

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// Writes `files` (names of dgrid's own, one level) into a new site at `directory`, replacing the one there.
    public static func publish(_ files: [(name: String, bytes: [UInt8])], at directory: String) throws(Failure) {
        let target = URL(fileURLWithPath: directory).standardizedFileURL.path
        let name = (target as NSString).lastPathComponent, parent = (target as NSString).deletingLastPathComponent
        guard !name.isEmpty, name != "/", name != ".", name != ".." else {
            throw Failure(description: "\(directory): give a directory of its own for the site, not the root")
        }
        var info = stat()
        guard stat(parent, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(description: "\(parent): no such directory; create it first (the site is built beside \(name), then moved into place)")
        }
        try checkReplaceable(target)
        sweepStale(parent: parent, name: name)

        let staging = parent + "/." + name + ".dgrid-new-\(getpid())-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        guard mkdir(staging, 0o755) == 0 else { throw Failure(description: "cannot create \(staging): \(errnoText(errno)); is \(parent) writable?") }
        var published = false
        defer { if !published { remove(staging) } }
        chmod(staging, 0o755)  // readable by the web server, whatever the umask
        let dirfd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirfd >= 0 else { throw Failure(description: "cannot open \(staging): \(errnoText(errno))") }
        defer { close(dirfd) }
        for file in files + [(name: marker, bytes: Array("a site written by dgrid dashboard; dgrid replaces this directory whole\n".utf8))] {
            try write(file.bytes, named: file.name, in: dirfd, staging: staging)
        }
        guard fsync(dirfd) == 0 else { throw Failure(description: "cannot sync \(staging): \(errnoText(errno))") }

        // Into place: a new name, or an exchange with the old site.
        var code = dgrid_rename_noreplace(staging, target)
        if code == -EEXIST {
            try checkReplaceable(target)  // made meanwhile: the same rule
            code = dgrid_rename_exchange(staging, target)
            if code == -EINVAL {
                // A filesystem that cannot exchange: the old site aside, then the new one in (a moment with no site, never half of one).
                let aside = parent + "/." + name + ".dgrid-old-\(getpid())-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
                guard rename(target, aside) == 0 else { throw Failure(description: "cannot move the old site \(target) aside: \(errnoText(errno))") }
                guard rename(staging, target) == 0 else {
                    let reason = errnoText(errno)
                    rename(aside, target)
                    throw Failure(description: "cannot move the new site into \(target): \(reason)")
                }
                published = true
                remove(aside)
                return
            }
            guard code == 0 else { throw Failure(description: "cannot swap the new site into \(target): \(errnoText(-code))") }
            published = true
            remove(staging)  // the old site, now under the staging name
        } else {
            guard code == 0 else { throw Failure(description: "cannot move the new site to \(target): \(errnoText(-code))") }
            published = true
        }
        let parentfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if parentfd >= 0 {
            fsync(parentfd)
            close(parentfd)
        }
    }

    /// Absent, an empty directory, or a site with the marker; anything else is someone's files.
    private static func checkReplaceable(_ target: String) throws(Failure) {
        var info = stat()
        guard lstat(target, &info) == 0 else {
            if errno == ENOENT { return }
            throw Failure(description: "cannot look at \(target): \(errnoText(errno))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            let what = info.st_mode & S_IFMT == S_IFLNK ? "a symlink" : "not a directory"
            throw Failure(description: "\(target) is \(what): give a new directory, or one dgrid dashboard wrote before")
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
        var markerInfo = stat()
        let marked = lstat(target + "/" + marker, &markerInfo) == 0 && markerInfo.st_mode & S_IFMT == S_IFREG
        guard entries.isEmpty || marked else {
            throw Failure(description: "\(target) holds files dgrid did not write (no \(marker) in it): give a new or empty directory, since the site replaces it whole")
        }
    }

    private static func write(_ bytes: [UInt8], named name: String, in dirfd: Int32, staging: String) throws(Failure) {
        let fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot create \(staging)/\(name): \(errnoText(errno))") }
        defer { close(fd) }
        fchmod(fd, 0o644)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "cannot write \(staging)/\(name): \(errnoText(n < 0 ? errno : EIO))") }
            offset += n
        }
        guard fsync(fd) == 0 else { throw Failure(description: "cannot sync \(staging)/\(name): \(errnoText(errno))") }
    }

    /// Staging and set-aside trees of `name` left by a dashboard that died (its pid is gone).
    private static func sweepStale(parent: String, name: String) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] {
            for kind in [".dgrid-new-", ".dgrid-old-"] {
                let prefix = "." + name + kind
                guard entry.hasPrefix(prefix), let pid = Int32(entry.dropFirst(prefix.count).prefix { $0 != "-" }),
                      pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
                remove(parent + "/" + entry)
            }
        }
    }

    /// Removes a tree without following a link in it.
    private static func remove(_ path: String) {
        let parent = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
        let fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = name.withCString { removeTree(in: fd, name: $0) }
    }
}
