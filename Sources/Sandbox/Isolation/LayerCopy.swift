import CShims
import Glibc
import SandboxSupport

/// The fallback for a host that refuses the overlay mount: the image's layers
/// merged into one directory with overlayfs's own rules, so the task sees the
/// same tree it would have seen through the overlay.
///
/// Layers are applied lowest first. A directory merges into the one below
/// unless it is opaque (`trusted.overlay.opaque=y`), which drops what lower
/// layers put there; a 0:0 character device (the unpacker's whiteout) deletes
/// the path below; anything else replaces what was below. Regular files are
/// copied, never hard-linked, since a writable run may change them and the
/// layers are shared. Mode, owner, mtime and extended attributes other than
/// `trusted.overlay.*` are kept (xattrs where this host allows them).
///
/// Every path is reached from a directory fd one component at a time with
/// O_NOFOLLOW, in the layers and in the copy alike: the layers are the store's
/// validated content, but no symlink in them is ever followed, only recreated.
enum LayerCopy {
    /// Deepest directory nesting followed; the unpacker's default path depth
    /// limit (256) is well inside it.
    static let maximumDepth = 1024

    /// Merges `layers` (host paths, lowest first) into `destination`, an
    /// existing empty directory.
    static func merge(layers: [String], into destination: String) throws(LayerCopyFailure) {
        let target = open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard target >= 0 else { throw LayerCopyFailure(operation: "open", path: destination, errno: errno) }
        defer { close(target) }
        for layer in layers {
            let source = open(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard source >= 0 else { throw LayerCopyFailure(operation: "open layer", path: layer, errno: errno) }
            defer { close(source) }
            var st = stat()
            guard fstat(source, &st) == 0 else { throw LayerCopyFailure(operation: "stat", path: layer, errno: errno) }
            let copier = Copier(layer: layer)
            try copier.apply(source, onto: target, path: "", depth: 0)
            // The root's owner, mode and times are the topmost layer's, as in overlayfs.
            try copier.setMetadata(target, like: st, xattrsFrom: source, path: "/")
        }
    }
}

/// Why a layer could not be copied: what, on which path (inside the layer), errno.
struct LayerCopyFailure: Error, Equatable, CustomStringConvertible {
    let operation: String
    let path: String
    let errno: Int32

    var description: String { "\(operation) \(path): \(errnoText(errno))" }
}

private struct Copier {
    let layer: String
    private let privileged = geteuid() == 0

    init(layer: String) {
        self.layer = layer
    }

    /// Applies the directory `source` (of this layer) onto `target` (of the copy).
    func apply(_ source: Int32, onto target: Int32, path: String, depth: Int) throws(LayerCopyFailure) {
        guard depth < LayerCopy.maximumDepth else {
            throw LayerCopyFailure(operation: "descend", path: display(path), errno: ELOOP)
        }
        for name in try entries(of: source, path: path) {
            let child = path + "/" + String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var st = stat()
            guard fstatat(source, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw failure("stat", child) }
            var below = stat()
            var exists = fstatat(target, name, &below, AT_SYMLINK_NOFOLLOW) == 0

            switch st.st_mode & S_IFMT {
            case S_IFCHR where st.st_rdev == 0:
                // A whiteout: deletes what lower layers put here, and is not itself copied.
                if exists { try remove(name, in: target, child) }

            case S_IFDIR:
                let from = openat(source, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard from >= 0 else { throw failure("open", child) }
                defer { close(from) }
                // A directory over a non-directory replaces it; an opaque one
                // replaces even a directory (its lower content is hidden).
                if exists && (below.st_mode & S_IFMT != S_IFDIR || isOpaque(from)) {
                    try remove(name, in: target, child)
                    exists = false
                }
                if !exists && mkdirat(target, name, 0o700) != 0 { throw failure("mkdir", child) }
                let to = openat(target, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard to >= 0 else { throw failure("open copy of", child) }
                defer { close(to) }
                // A lower layer may have left it 0555; without root, writing into
                // it needs the owner's bits back until setMetadata sets the real mode.
                if exists && !privileged { _ = fchmod(to, 0o700) }
                try apply(from, onto: to, path: child, depth: depth + 1)
                try setMetadata(to, like: st, xattrsFrom: from, path: child)

            case S_IFREG:
                if exists { try remove(name, in: target, child) }
                try copyFile(name, from: source, to: target, like: st, child)

            case S_IFLNK:
                if exists { try remove(name, in: target, child) }
                try copySymlink(name, from: source, to: target, like: st, child)

            default:
                // FIFOs, sockets and (if an admin allowed them) devices: made anew.
                if exists { try remove(name, in: target, child) }
                guard mknodat(target, name, st.st_mode & S_IFMT | 0o600, st.st_rdev) == 0 else {
                    throw failure("mknod", child)
                }
                try setLinkMetadata(name, in: target, like: st, child, chmod: true)
            }
        }
    }

    /// Owner, then mode (a chown clears setuid bits), then xattrs (a chown
    /// clears security.capability), then times (every change above moves ctime
    /// only, but writes into a directory moved its mtime).
    func setMetadata(_ fd: Int32, like st: stat, xattrsFrom source: Int32, path: String) throws(LayerCopyFailure) {
        if fchown(fd, st.st_uid, st.st_gid) != 0 && (privileged || errno != EPERM) {
            throw failure("chown", path)
        }
        guard fchmod(fd, st.st_mode & 0o7777) == 0 else { throw failure("chmod", path) }
        try copyXattrs(from: source, to: fd, path)
        var times = [st.st_atim, st.st_mtim]
        guard futimens(fd, &times) == 0 else { throw failure("set times of", path) }
    }

    private func setLinkMetadata(_ name: [CChar], in directory: Int32, like st: stat, _ path: String,
                                 chmod: Bool) throws(LayerCopyFailure) {
        if fchownat(directory, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 && (privileged || errno != EPERM) {
            throw failure("chown", path)
        }
        // Only for the FIFO or device just made in the copy's own 0700 tree;
        // fchmodat cannot refuse to follow, and a symlink has no mode.
        if chmod && fchmodat(directory, name, st.st_mode & 0o7777, 0) != 0 { throw failure("chmod", path) }
        var times = [st.st_atim, st.st_mtim]
        guard utimensat(directory, name, &times, AT_SYMLINK_NOFOLLOW) == 0 else { throw failure("set times of", path) }
    }

    private func copyFile(_ name: [CChar], from source: Int32, to target: Int32, like st: stat,
                          _ path: String) throws(LayerCopyFailure) {
        let input = openat(source, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw failure("open", path) }
        defer { close(input) }
        let output = openat(target, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw failure("create", path) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 128 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw failure("read", path) }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { raw in write(output, raw.baseAddress.map { $0 + written }, n - written) }
                if w < 0 && errno == EINTR { continue }
                if w <= 0 { throw failure("write", path) }
                written += w
            }
        }
        try setMetadata(output, like: st, xattrsFrom: input, path: path)
    }

    private func copySymlink(_ name: [CChar], from source: Int32, to target: Int32, like st: stat,
                             _ path: String) throws(LayerCopyFailure) {
        // The target is copied byte for byte and never resolved.
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(source, name, &buffer, buffer.count - 1)
        guard n >= 0 else { throw failure("readlink", path) }
        buffer[n] = 0
        guard symlinkat(buffer, target, name) == 0 else { throw failure("symlink", path) }
        try setLinkMetadata(name, in: target, like: st, path, chmod: false)
    }

    /// Extended attributes of `source` onto `target`, except overlayfs's own
    /// (`trusted.overlay.*`, `user.overlay.*`: the copy is not an overlay layer). Attributes this
    /// host will not store (no CAP_SYS_ADMIN for trusted.*, a filesystem
    /// without them) are skipped: "where possible".
    private func copyXattrs(from source: Int32, to target: Int32, _ path: String) throws(LayerCopyFailure) {
        var size = dgrid_unpack_flistxattr(source, nil, 0)
        if size < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP) { return }
        guard size >= 0 else { throw failure("list xattrs of", path) }
        guard size > 0 else { return }
        var list = [CChar](repeating: 0, count: Int(size))
        size = dgrid_unpack_flistxattr(source, &list, list.count)
        guard size >= 0 else { throw failure("list xattrs of", path) }
        for name in list[..<Int(size)].split(separator: 0, omittingEmptySubsequences: true) {
            let key = Array(name) + [0]
            if key.starts(with: Array("trusted.overlay.".utf8CString.dropLast()))
                || key.starts(with: Array("user.overlay.".utf8CString.dropLast())) { continue }
            let length = dgrid_unpack_fgetxattr(source, key, nil, 0)
            guard length >= 0 else { continue }  // removed meanwhile, or not readable here
            var value = [UInt8](repeating: 0, count: Int(length))
            let got = value.withUnsafeMutableBytes { dgrid_unpack_fgetxattr(source, key, $0.baseAddress, $0.count) }
            guard got >= 0 else { continue }
            let set = value.withUnsafeBytes { dgrid_unpack_fsetxattr(target, key, $0.baseAddress, Int(got)) }
            if set != 0 && ![EPERM, ENOTSUP, EOPNOTSUPP, EACCES].contains(errno) {
                throw failure("set xattr on", path)
            }
        }
    }

    private func isOpaque(_ directory: Int32) -> Bool {
        var value: UInt8 = 0
        // dgrid's unpacker writes both; user.* is the one a rootless import can.
        for name in ["user.overlay.opaque", "trusted.overlay.opaque"]
        where dgrid_unpack_fgetxattr(directory, name, &value, 1) == 1 && value == UInt8(ascii: "y") {
            return true
        }
        return false
    }

    /// Removes what lower layers put at `name`, without following a symlink in it.
    private func remove(_ name: [CChar], in directory: Int32, _ path: String) throws(LayerCopyFailure) {
        let err = name.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.map { removeTree(in: directory, name: $0) } ?? EINVAL
        }
        guard err == 0 else { throw LayerCopyFailure(operation: "remove copy of", path: display(path), errno: err) }
    }

    /// Entry names of the directory `fd` (NUL-terminated, as the kernel gave
    /// them: not necessarily UTF-8), read through a duplicate so `fd` stays ours.
    private func entries(of fd: Int32, path: String) throws(LayerCopyFailure) -> [[CChar]] {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw failure("read directory", path) }
        guard let stream = fdopendir(copy) else {
            let err = errno
            close(copy)
            throw LayerCopyFailure(operation: "read directory", path: display(path), errno: err)
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [[CChar]] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                raw.prefix(while: { $0 != 0 }).map { CChar(bitPattern: $0) } + [0]
            }
            if name == [0x2e, 0] || name == [0x2e, 0x2e, 0] { continue }
            names.append(name)
        }
        return names
    }

    /// A failure of the call just made: read errno before anything else can change it.
    private func failure(_ operation: String, _ path: String) -> LayerCopyFailure {
        let code = errno
        return LayerCopyFailure(operation: operation, path: display(path), errno: code)
    }

    private func display(_ path: String) -> String {
        "\(layer)\(path.isEmpty ? "/" : path)"
    }
}
