import CNettle
import Foundation
import Sandbox

/// Where the ledger looks up the SSH server's host key (docs/ARCHITECTURE.md §6, docs/THREATS.md, attacker 4).
///
/// Policy: over ssh:// the server's host key must be listed for that host (and port)
/// in this OpenSSH known_hosts file, or the connection is refused before any
/// credential is offered. There is no "accept new keys" mode: a worker that trusted
/// the first key it saw would hand its claims and results to whoever answered first.
/// The ledger's check is the only one that counts; libgit2's own look-up in
/// `~/.ssh/known_hosts` is ignored, so the configured file is the whole truth.
///
/// Supported: plain and hashed (`|1|salt|hash`) host names, `[host]:port` for ports
/// other than 22, `*`/`?` wildcards, `!` negation, and `@revoked` lines (a revoked key
/// is refused for every host). `@cert-authority` lines are ignored: host
/// certificates are not supported.
public struct SSHKnownHosts: Sendable, Equatable {
    /// The environment variable naming the known_hosts file.
    public static let environmentVariable = "DGRID_SSH_KNOWN_HOSTS"
    /// The largest known_hosts file read.
    static let maxFileBytes = 4 << 20

    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// `DGRID_SSH_KNOWN_HOSTS` when set and non-empty, else `~/.ssh/known_hosts` of this user.
    public static func fromEnvironment() -> SSHKnownHosts {
        if let value = ProcessInfo.processInfo.environment[environmentVariable], !value.isEmpty {
            return SSHKnownHosts(path: value)
        }
        var home = ProcessInfo.processInfo.environment["HOME"] ?? ""
        if home.isEmpty, let entry = getpwuid(geteuid()), let dir = entry.pointee.pw_dir {
            home = String(cString: dir)
        }
        return SSHKnownHosts(path: (home.isEmpty ? "/root" : home) + "/.ssh/known_hosts")
    }

    /// What the file says about `key` presented by `host`:`port`.
    enum Verdict: Equatable {
        case trusted
        /// No line names this host.
        case unknown
        /// Lines name this host, with other keys: the key changed, or someone is in between.
        case mismatch
        case revoked
        case unreadable(String)
    }

    /// The server's key as libgit2 reports it: the raw key blob and/or its SHA-256.
    struct PresentedKey {
        var blob: [UInt8]?
        var sha256: [UInt8]?

        func matches(_ candidate: [UInt8]) -> Bool {
            if let sha256 { return Digest(of: candidate).hex == Self.hex(sha256) }
            if let blob { return blob == candidate }
            return false
        }

        /// Lowercase hex SHA-256 (shown in errors; hex survives `Redaction`, base64 would not).
        var fingerprint: String {
            if let sha256 { return Self.hex(sha256) }
            return blob.map { Digest(of: $0).hex } ?? "unknown"
        }

        static func hex(_ bytes: [UInt8]) -> String {
            bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        }
    }

    func verify(host: String, port: Int, key: PresentedKey) -> Verdict {
        guard key.blob != nil || key.sha256 != nil else { return .unreadable("libgit2 gave no host key to check") }
        let text: String
        switch Self.read(path) {
        case .success(let content): text = content
        case .failure(let problem): return problem.isMissing ? .unknown : .unreadable(problem.message)
        }
        let name = port == 22 ? host.lowercased() : "[\(host.lowercased())]:\(port)"
        var hostListed = false
        var trusted = false
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            var fields = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            var marker: String?
            if first.hasPrefix("@") {
                marker = first
                fields.removeFirst()
            }
            guard fields.count >= 3, let blob = Data(base64Encoded: fields[2]) else { continue }
            let keyMatches = key.matches(Array(blob))
            switch marker {
            case "@revoked"?:
                if keyMatches { return .revoked }
            case nil:
                guard Self.hostMatches(fields[0], name: name) else { continue }
                hostListed = true
                if keyMatches { trusted = true }
            default:
                continue  // @cert-authority and unknown markers: not supported, never trusted
            }
        }
        if trusted { return .trusted }
        return hostListed ? .mismatch : .unknown
    }

    /// A known_hosts host field (comma-separated patterns) against "host" or "[host]:port".
    static func hostMatches(_ field: String, name: String) -> Bool {
        var matched = false
        for pattern in field.split(separator: ",").map(String.init) {
            if pattern.hasPrefix("|1|") {
                if hashedMatches(pattern, name: name) { matched = true }
                continue
            }
            let negated = pattern.hasPrefix("!")
            let body = (negated ? String(pattern.dropFirst()) : pattern).lowercased()
            if wildcardMatches(Array(body.utf8), Array(name.utf8)) {
                if negated { return false }
                matched = true
            }
        }
        return matched
    }

    /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `ssh-keygen -H` writes.
    private static func hashedMatches(_ pattern: String, name: String) -> Bool {
        let parts = pattern.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 4, let salt = Data(base64Encoded: String(parts[2])),
              let hash = Data(base64Encoded: String(parts[3])) else { return false }
        return SHA1.hmac(key: Array(salt), message: Array(name.utf8)) == Array(hash)
    }

    private static func wildcardMatches(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0, star = -1, mark = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t]) {
                p += 1; t += 1
            } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p; mark = t; p += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    private struct ReadProblem: Error {
        let message: String
        let isMissing: Bool
    }

    private static func read(_ path: String) -> Result<String, ReadProblem> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            return .failure(ReadProblem(message: "cannot open \(path): \(String(cString: strerror(code)))",
                                        isMissing: code == ENOENT))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            return .failure(ReadProblem(message: "\(path) is not a regular file", isMissing: false))
        }
        guard info.st_size <= maxFileBytes else {
            return .failure(ReadProblem(message: "\(path) is over \(maxFileBytes) bytes", isMissing: false))
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return Glibc.read(fd, base + filled, buffer.count - filled)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            filled += count
        }
        return .success(String(decoding: bytes[..<filled], as: UTF8.self))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// SHA-1 and HMAC-SHA1: hashed known_hosts names and loose object ids (OpenSSH's format
/// fixes the algorithm). Never used for anything that needs collision resistance.
enum SHA1 {
    /// Nettle's SHA-1 (already linked for the content store's SHA-256).
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var context = sha1_ctx()
        nettle_sha1_init(&context)
        message.withUnsafeBufferPointer { nettle_sha1_update(&context, $0.count, $0.baseAddress) }
        var digest = [UInt8](repeating: 0, count: Int(SHA1_DIGEST_SIZE))
        nettle_sha1_digest(&context, digest.count, &digest)
        return digest
    }

    static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var block = key.count > 64 ? hash(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        let inner = hash(block.map { $0 ^ 0x36 } + message)
        return hash(block.map { $0 ^ 0x5c } + inner)
    }
}
