import SandboxImages
import SandboxSupport
import Glibc

/// A file a push reads (`ArtifactPushRequest.File`), opened from the
/// descriptor the caller handed down. Beneath a directory descriptor (a task's
/// `/output`, whose names are the task's) every component is opened with
/// O_NOFOLLOW: a symlink the task left — to `/etc/shadow`, to `../..` — is
/// refused, never read, although the helper runs as the worker's user
/// (docs/THREATS.md, T19). Only a regular file of the size the worker saw is pushed.
enum ArtifactSource {
    static func open(_ file: ArtifactPushRequest.File) throws(ArtifactHelperError) -> Int32 {
        func refuse(_ reason: String) -> ArtifactHelperError { .source(title: file.title, reason: reason) }
        let fd: Int32
        if let path = file.path {
            guard !path.isEmpty, !path.hasPrefix("/"), !path.utf8.contains(0),
                  !path.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw refuse("\(UntrustedText.quoted(path, limit: 120)) is not a clean relative path")
            }
            fd = try openBeneath(file.fd, path: path, refuse: refuse)
        } else {
            fd = fcntl(file.fd, F_DUPFD_CLOEXEC, 3)
            guard fd >= 0 else { throw refuse("descriptor \(file.fd): \(errnoText(errno))") }
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw refuse("not a regular file")
        }
        guard UInt64(info.st_size) == file.size else {
            close(fd)
            throw refuse("\(info.st_size) bytes, not the \(file.size) the worker listed")
        }
        return fd
    }

    /// `path` under the directory `root`, one component at a time, never through a link.
    private static func openBeneath(_ root: Int32, path: String, refuse: (String) -> ArtifactHelperError) throws(ArtifactHelperError) -> Int32 {
        var parts = path.split(separator: "/").map(String.init)
        let name = parts.removeLast()
        var directory = fcntl(root, F_DUPFD_CLOEXEC, 3)
        guard directory >= 0 else { throw refuse("directory descriptor \(root): \(errnoText(errno))") }
        for part in parts {
            let next = openat(directory, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            close(directory)
            guard next >= 0 else { throw refuse("\(UntrustedText.quoted(part, limit: 80)): \(failure == ELOOP || failure == ENOTDIR ? "not a directory (a link is never followed)" : errnoText(failure))") }
            directory = next
        }
        defer { close(directory) }
        // O_NONBLOCK: a FIFO swapped in cannot hang the helper; fstat refuses it next.
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw refuse(errno == ELOOP ? "a symbolic link (never followed)" : errnoText(errno)) }
        return fd
    }

    /// The sha256 of the first `size` bytes of `fd`, read with pread (the offset is not moved).
    static func hash(_ fd: Int32, size: UInt64, title: String) throws(ArtifactHelperError) -> Digest {
        var hasher = DigestHasher()
        if let failure = FileChunks.read(fd, size: size, chunkSize: 4 << 20, { hasher.update($0) }) {
            throw .source(title: title, reason: "\(failure) of \(size)")
        }
        return hasher.finalize()
    }
}
