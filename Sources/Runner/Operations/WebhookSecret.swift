import Glibc
import Sandbox

/// The key webhook events are signed with (HMAC-SHA256, `WebhookSignature`).
/// Read from a file this user owns and nobody else can read, or once from
/// `$DGRID_WEBHOOK_SECRET` (then wiped from the process's environment, as
/// `GIT_TOKEN` is, so no child — task, helper — inherits it). Never a flag:
/// argv is world-readable in /proc (docs/THREATS.md). The bytes never leave
/// this process: the helper that POSTs gets the body and its signature only.
public struct WebhookSecret: Sendable, CustomStringConvertible {
    let bytes: [UInt8]

    public static let environmentName = "DGRID_WEBHOOK_SECRET"
    /// Shorter keys are guessable offline from one signed body.
    public static let minimumBytes = 16
    static let maximumBytes = 4_096

    init(bytes: [UInt8]) throws(WebhookSecretError) {
        guard bytes.count >= Self.minimumBytes else {
            throw .tooShort(bytes.count)
        }
        self.bytes = bytes
    }

    /// Never the key.
    public var description: String { "webhook secret (\(bytes.count) bytes)" }

    /// The secret from `file` when given, else from the environment (wiped either way); nil when neither has one.
    public static func load(file: String?) throws(WebhookSecretError) -> WebhookSecret? {
        var fromEnvironment: [UInt8]?
        if let value = getenv(environmentName) {
            fromEnvironment = Array(UnsafeBufferPointer(start: UnsafeRawPointer(value).assumingMemoryBound(to: UInt8.self), count: strlen(value)))
            memset(value, 0, strlen(value))
            unsetenv(environmentName)
        }
        if let file { return try WebhookSecret(bytes: trimmed(try read(file))) }
        guard let fromEnvironment, !trimmed(fromEnvironment).isEmpty else { return nil }
        return try WebhookSecret(bytes: trimmed(fromEnvironment))
    }

    /// A trailing newline (`echo … > file`) is not part of the key.
    static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        while let last = bytes.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { bytes.removeLast() }
        return bytes
    }

    /// The file's bytes, refusing one others could read or replace.
    static func read(_ path: String) throws(WebhookSecretError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw .file(path, errno == ELOOP ? "a symlink: point at the regular file itself" : errnoText(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .file(path, errnoText(errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .file(path, "not a regular file") }
        guard info.st_uid == geteuid() || info.st_uid == 0 else {
            throw .file(path, "owned by uid \(info.st_uid), not by this user or root: chown it")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw .file(path, "mode \(String(info.st_mode & 0o777, radix: 8)) lets other users read or change it: chmod 0600 \(path)")
        }
        guard info.st_size <= maximumBytes else { throw .file(path, "\(info.st_size) bytes: it must hold only the secret") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let n = bytes[filled...].withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            filled += n
        }
        return Array(bytes.prefix(filled))
    }
}

public enum WebhookSecretError: Error, Equatable, Sendable, CustomStringConvertible {
    case file(String, String)
    case tooShort(Int)
    case missing

    public var description: String {
        switch self {
        case .file(let path, let problem): "webhook secret file \(path): \(problem)"
        case .tooShort(let count):
            "the webhook secret has \(count) bytes; use at least \(WebhookSecret.minimumBytes) (e.g. head -c 32 /dev/urandom | base64 > FILE; chmod 0600 FILE)"
        case .missing:
            "a webhook URL is set but no secret to sign events with: give --webhook-secret-file FILE (webhook_secret_file) or $\(WebhookSecret.environmentName)"
        }
    }
}
