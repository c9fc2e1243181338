import CNettle
import Glibc
import SandboxSupport

/// The per-state-directory secret that authenticates cached seccomp programs:
/// 32 random bytes in `cache/seccomp/secret`, a regular file of this user,
/// mode 0600, one link. A cached program is an HMAC-SHA256 under it, so a file
/// dgrid did not write (bytes flipped on disk, or a filter that allows
/// everything put there by whoever could reach the directory) is never loaded
/// into a sandbox: it is recompiled instead.
struct SeccompCacheSecret {
    static let fileName = "secret"
    static let byteCount = 32
    static let macByteCount = Int(SHA256_DIGEST_SIZE)

    let bytes: [UInt8]

    /// The secret in the directory `directory` (an open descriptor), made on
    /// first use; one that is not exactly as dgrid writes it is replaced. nil
    /// when none can be read or made: the caller then compiles without the cache.
    static func load(in directory: Int32) -> SeccompCacheSecret? {
        switch PrivateFile.read(fileName, in: directory, sizes: byteCount...byteCount) {
        case .contents(let bytes):
            return SeccompCacheSecret(bytes: bytes)
        case .refused:
            // Not as dgrid writes it (owner, mode, size, links, a symlink): a new
            // one, which also retires every program cached under the old.
            _ = unlinkat(directory, fileName, 0)
        case .missing:
            break
        }
        if let created = create(in: directory) { return created }
        // Another process linked its secret first: use that one.
        if case .contents(let bytes) = PrivateFile.read(fileName, in: directory, sizes: byteCount...byteCount) {
            return SeccompCacheSecret(bytes: bytes)
        }
        return nil
    }

    /// HMAC-SHA256 of `parts`, in order, under the secret.
    func mac(_ parts: [UInt8]...) -> [UInt8] {
        var context = hmac_sha256_ctx()
        bytes.withUnsafeBufferPointer { nettle_hmac_sha256_set_key(&context, $0.count, $0.baseAddress) }
        for part in parts {
            part.withUnsafeBufferPointer { nettle_hmac_sha256_update(&context, $0.count, $0.baseAddress) }
        }
        var digest = [UInt8](repeating: 0, count: Self.macByteCount)
        nettle_hmac_sha256_digest(&context, digest.count, &digest)
        return digest
    }

    /// Compares in time independent of where they differ.
    static func equal(_ a: ArraySlice<UInt8>, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// Written under a temporary name and linked into place: two processes
    /// starting at once agree on whichever secret was linked first.
    private static func create(in directory: Int32) -> SeccompCacheSecret? {
        var bytes = [UInt8](repeating: 0, count: byteCount)
        guard fillRandom(&bytes) else { return nil }
        let temporary = "\(fileName).\(getpid()).tmp"
        guard PrivateFile.write(bytes, to: temporary, in: directory) else { return nil }
        defer { unlinkat(directory, temporary, 0) }
        guard linkat(directory, temporary, directory, fileName, 0) == 0 else { return nil }
        return SeccompCacheSecret(bytes: bytes)
    }

    /// getentropy(3): the kernel's random pool, at most 256 bytes a call.
    private static func fillRandom(_ bytes: inout [UInt8]) -> Bool {
        bytes.withUnsafeMutableBytes { raw in
            raw.baseAddress.map { getentropy($0, raw.count) == 0 } ?? false
        }
    }
}

/// Files that only this user may have written: regular, owned by the
/// effective uid, mode exactly 0600, a single link. Opened O_NOFOLLOW and
/// O_NONBLOCK (a FIFO put in its place must not hang the start) and checked
/// with fstat on the descriptor that is then read.
enum PrivateFile {
    enum Read {
        case contents([UInt8])
        case missing
        /// There, but not as dgrid writes it (or unreadable).
        case refused
    }

    /// The whole file when it passes the checks and its size is in `sizes`.
    static func read(_ name: String, in directory: Int32, sizes: ClosedRange<Int>) -> Read {
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT ? .missing : .refused }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
              info.st_mode & 0o7777 == 0o600, info.st_nlink == 1, sizes.contains(Int(info.st_size)) else {
            return .refused
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { raw in
                raw.baseAddress.map { Glibc.read(fd, $0 + filled, raw.count - filled) } ?? -1
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return .refused }
            filled += count
        }
        return .contents(bytes)
    }

    /// Creates `name` (which must not exist) as 0600 whatever the umask, with `bytes`.
    static func write(_ bytes: [UInt8], to name: String, in directory: Int32) -> Bool {
        let fd = openat(directory, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0 else {
            unlinkat(directory, name, 0)
            return false
        }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                raw.baseAddress.map { Glibc.write(fd, $0 + written, raw.count - written) } ?? -1
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                unlinkat(directory, name, 0)
                return false
            }
            written += count
        }
        return true
    }
}
