#if canImport(Glibc)
import Glibc
#endif

/// How the ledger authenticates to the remote. The secret stays in this value and is
/// handed to libgit2 only through its credential callback (`RemoteCallbacks`): never
/// in a URL, argv, the environment of a task, or an error.
public enum GitCredentials: Sendable {
    case none
    /// HTTPS token, sent as the password of user "x-access-token" (GitHub's
    /// convention, accepted by Gitea and GitLab too).
    case token(String)
    case sshKey(privateKeyPath: String, publicKeyPath: String?, passphrase: String?)
    case sshAgent

    /// The largest token file read; a real token is well under 1 KiB.
    static let maxTokenFileBytes = 16 * 1024

    /// GIT_TOKEN read once from the environment, its bytes wiped and the entry removed (unsetenv), or a token file that must be 0600 and owned by this user.
    ///
    /// GIT_TOKEN is removed whether or not it is used, so no child process (and no
    /// task) can inherit it. An explicit `tokenFile` wins over GIT_TOKEN. With
    /// neither, `.none`. Call this early, before other threads start:
    /// unsetenv is not thread-safe.
    public static func fromEnvironment(tokenFile: String?) throws(LedgerError) -> GitCredentials {
        var fromEnvironment: String?
        if let value = getenv("GIT_TOKEN") {
            fromEnvironment = String(cString: value)
            // unsetenv only unlinks the entry: the bytes stay in the block the
            // kernel shows as /proc/<pid>/environ (docs/THREATS.md, T1). Wipe them.
            memset(value, 0, strlen(value))
            unsetenv("GIT_TOKEN")
        }
        if let tokenFile {
            return .token(try readTokenFile(tokenFile))
        }
        if let token = fromEnvironment.map(trimmed), !token.isEmpty {
            return .token(token)
        }
        return .none
    }

    /// The token in `path`, refusing a file others could read or replace.
    static func readTokenFile(_ path: String) throws(LedgerError) -> String {
        func failure(_ message: String, _ hint: String) -> LedgerError {
            LedgerError(.credentials, operation: "read token file \(path)", remote: "", message: message, hint: hint)
        }
        // O_NOFOLLOW: a symlink planted in place of the file is refused, not followed.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            throw failure(String(cString: strerror(code)),
                          code == ELOOP ? "the token file must be a regular file, not a symlink"
                                        : "create it with: install -m 0600 /dev/null \(path) and write the token into it")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(String(cString: strerror(errno)), "check the file") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw failure("not a regular file", "point the token file option at a regular file")
        }
        guard info.st_uid == geteuid() else {
            throw failure("owned by uid \(info.st_uid), not by this user (uid \(geteuid()))",
                          "chown it to the user dgrid runs as")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw failure("mode \(String(info.st_mode & 0o777, radix: 8)) lets other users read or change it",
                          "run: chmod 0600 \(path)")
        }
        guard info.st_size <= maxTokenFileBytes else {
            throw failure("\(info.st_size) bytes, more than a token (limit \(maxTokenFileBytes))",
                          "the file must hold only the token")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return read(fd, base + filled, buffer.count - filled)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            filled += count
        }
        let token = trimmed(String(decoding: bytes[..<filled], as: UTF8.self))
        guard !token.isEmpty else { throw failure("the file is empty", "write the token into it") }
        guard !token.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
            throw failure("the token contains control characters or several lines", "the file must hold only the token")
        }
        return token
    }

    private static func trimmed(_ text: String) -> String {
        String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    /// What kind of credential this is, for errors (never the secret).
    var kindDescription: String {
        switch self {
        case .none: "no credentials"
        case .token: "a token"
        case .sshKey: "an SSH key"
        case .sshAgent: "the SSH agent"
        }
    }

    /// Strings that must never appear in error text.
    var secrets: [String] {
        switch self {
        case .token(let token): [token]
        case .sshKey(_, _, let passphrase?): [passphrase]
        default: []
        }
    }
}
