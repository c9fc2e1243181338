import Glibc
import SandboxSupport

/// What this host trusts, read from `$DGRID_HOME/trust/` (never from the grid
/// repository, which anyone who can push writes): `allowed_signers` and
/// `revoked_keys`. The paths are a contract operators and tests write to
/// directly. Every file must be a regular file (not a symlink), owned by this
/// user or root and writable by nobody else; the directory passes
/// `StateDirectory`'s walk (this user's, closed to others).
public struct TrustStore: Sendable {
    public static let directoryName = "trust"
    public static let allowedSignersName = "allowed_signers"
    public static let revokedKeysName = "revoked_keys"
    /// Far above any real list; a bigger file is refused, not read.
    public static let maxFileBytes = 4 << 20

    public let allowedSigners: AllowedSigners
    public let revokedKeys: RevokedKeys
    /// The directory read, for messages; nil when it does not exist.
    public let directory: String?

    public init(allowedSigners: AllowedSigners, revokedKeys: RevokedKeys = RevokedKeys(), directory: String? = nil) {
        self.allowedSigners = allowedSigners
        self.revokedKeys = revokedKeys
        self.directory = directory
    }

    /// Loads the host's files. A missing directory or file is an empty list
    /// (nobody trusted, nothing revoked); a present one must be usable.
    public static func load(state: StateDirectory) throws(TrustFileError) -> TrustStore {
        let path: String?
        do {
            path = try state.existingDirectory(directoryName)
        } catch {
            throw TrustFileError(file: state.path + "/" + directoryName, problem: .permissions("\(error)"))
        }
        guard let path else { return TrustStore(allowedSigners: AllowedSigners(entries: [])) }
        let signersPath = path + "/" + allowedSignersName
        let revokedPath = path + "/" + revokedKeysName
        let signers = try readText(signersPath).map { text throws(TrustFileError) in try AllowedSigners.parse(text, source: signersPath) }
        let revoked = try readText(revokedPath).map { text throws(TrustFileError) in try RevokedKeys.parse(text, source: revokedPath) }
        return TrustStore(allowedSigners: signers ?? AllowedSigners(entries: []), revokedKeys: revoked ?? RevokedKeys(), directory: path)
    }

    /// The file's text, nil when missing (`readBytes`'s checks).
    package static func readText(_ path: String) throws(TrustFileError) -> String? {
        guard let bytes = try readBytes(path) else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw TrustFileError(file: path, problem: .syntax("not UTF-8 text"))
        }
        return text
    }

    /// The file's bytes, nil when missing. Opened without following a symlink,
    /// checked on the descriptor that is then read: a regular file, owned by
    /// this user or root, writable by nobody else, at most `maxFileBytes`.
    package static func readBytes(_ path: String) throws(TrustFileError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { return nil }
            if code == ELOOP { throw TrustFileError(file: path, problem: .permissions("is a symlink")) }
            throw TrustFileError(file: path, problem: .unreadable(errnoText(code)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw TrustFileError(file: path, problem: .unreadable(errnoText(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw TrustFileError(file: path, problem: .permissions("is not a regular file")) }
        guard info.st_uid == geteuid() || info.st_uid == 0 else {
            throw TrustFileError(file: path, problem: .permissions("is owned by uid \(info.st_uid)"))
        }
        guard info.st_mode & 0o022 == 0 else {
            throw TrustFileError(file: path, problem: .permissions("is writable by group or others (mode \(String(info.st_mode & 0o7777, radix: 8)))"))
        }
        guard info.st_size <= maxFileBytes else {
            throw TrustFileError(file: path, problem: .unreadable("\(info.st_size) bytes, over \(maxFileBytes)"))
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + filled, raw.count - filled) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw TrustFileError(file: path, problem: .unreadable(count < 0 ? errnoText(errno) : "shorter than its size")) }
            filled += count
        }
        return bytes
    }
}
