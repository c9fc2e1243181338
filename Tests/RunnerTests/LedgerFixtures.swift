import Foundation
import Testing
import TestSupport
@testable import Runner

/// Repositories, mirrors and `git daemon`s for the ledger tests. The `git` CLI is
/// used here only to set up and inspect repositories; the product never runs it.
enum LedgerFixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// A fresh directory, removed by the caller's defer.
    static func temporaryDirectory() throws -> String {
        let path = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-ledger-" + UUID().uuidString)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @discardableResult
    static func git(_ arguments: [String], in directory: String? = nil) throws -> String {
        var args = arguments
        if let directory { args = ["-C", directory] + args }
        // A fixed identity and no user config: the tests must not depend on the host's.
        let result = try ProcessRunner.run("/usr/bin/git", args, environment: [
            "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@localhost",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@localhost",
        ])
        guard result.status == 0 else {
            throw FixtureError("git \(args.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A bare repository DIR/grid.git.
    static func bareRepository(in directory: String) throws -> String {
        let path = directory + "/grid.git"
        try git(["init", "--quiet", "--bare", path])
        return path
    }

    /// Runs `body` with a git daemon serving `directory` on `port`, stopped afterwards.
    static func withGitDaemon<T>(serving directory: String, port: Int, _ body: () throws -> T) throws -> T {
        let script = repoRoot + "/scripts/git-daemon.sh"
        let start = try ProcessRunner.run("/bin/bash", [script, "start", directory, String(port)])
        guard start.status == 0 else { throw FixtureError("git-daemon.sh start failed: \(start.stderr)") }
        defer { _ = try? ProcessRunner.run("/bin/bash", [script, "stop", directory]) }
        return try body()
    }

    /// Runs `body` with lighttpd + git-http-backend serving `directory` on `port`,
    /// behind basic auth for x-access-token / `token`, stopped afterwards.
    static func withGitHTTP<T>(serving directory: String, port: Int, token: String, _ body: () throws -> T) throws -> T {
        let script = repoRoot + "/scripts/git-http.sh"
        // The password goes in on stdin, from a private file: never in argv.
        let tokenFile = directory + "/../http-token"
        _ = FileManager.default.createFile(atPath: tokenFile, contents: Data((token + "\n").utf8),
                                       attributes: [.posixPermissions: 0o600])
        let start = try ProcessRunner.run("/bin/bash", ["-c", "exec \"$0\" start \"$1\" \"$2\" x-access-token < \"$3\"",
                                                        script, directory, String(port), tokenFile])
        guard start.status == 0 else { throw FixtureError("git-http.sh start failed: \(start.stderr)") }
        defer { _ = try? ProcessRunner.run("/bin/bash", [script, "stop", directory]) }
        return try body()
    }

    static func ledger(_ remote: String, in directory: String, credentials: GitCredentials = .none,
                       name: String = "mirror") throws -> GitLedger {
        try GitLedger(remote: remote, mirrorPath: directory + "/" + name, credentials: credentials)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The two ways the ledger reaches a remote: the local transport and a smart one.
enum LedgerTransport: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case file
    case gitDaemon
    case http

    static let httpToken = "dgrid-test-Tq3hV8sLw2Nz6Kc1"

    /// What the ledger needs to authenticate over this transport.
    var credentials: GitCredentials { self == .http ? .token(Self.httpToken) : .none }

    var testDescription: String { rawValue }

    /// Runs `body` with the URL of a fresh bare repository reachable over this transport.
    /// `port` is used only by the servers; each test passes its own so tests can run in
    /// parallel, or 0 for a free one the kernel picks (`FreePort`).
    func withRemote<T>(port requested: Int, _ body: (_ url: String, _ bareRepository: String, _ directory: String) throws -> T) throws -> T {
        let port = requested == 0 ? try FreePort.loopback() : requested
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let served = directory + "/served"
        try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
        let bare = try LedgerFixtures.bareRepository(in: served)
        switch self {
        case .file:
            return try body("file://" + bare, bare, directory)
        case .gitDaemon:
            return try LedgerFixtures.withGitDaemon(serving: served, port: port) {
                try body("git://127.0.0.1:\(port)/grid.git", bare, directory)
            }
        case .http:
            // Its own port range, so a daemon test and an HTTP test never collide.
            let httpPort = requested == 0 ? try FreePort.loopback() : port + 20
            return try LedgerFixtures.withGitHTTP(serving: served, port: httpPort, token: Self.httpToken) {
                try body("http://127.0.0.1:\(httpPort)/git/grid.git", bare, directory)
            }
        }
    }
}

/// A loopback OpenSSH server (scripts/git-sshd.sh) serving a fresh bare repository,
/// with an authorised ed25519 client key and a known_hosts file listing the server.
struct SSHRemote {
    let url: String
    let bare: String
    /// Scratch space for mirrors, beside (not inside) what the server serves.
    let directory: String
    let privateKey: String
    let publicKey: String
    /// A known_hosts file holding exactly the server's key for [127.0.0.1]:port.
    let knownHosts: String
    /// The known_hosts line for the server ("[127.0.0.1]:PORT ssh-ed25519 AAAA…").
    let knownHostsLine: String
    let port: Int

    var credentials: GitCredentials { .sshKey(privateKeyPath: privateKey, publicKeyPath: publicKey, passphrase: nil) }

    func ledger(_ name: String, credentials: GitCredentials? = nil, knownHosts: String? = nil) throws -> GitLedger {
        try GitLedger(remote: url, mirrorPath: directory + "/" + name, credentials: credentials ?? self.credentials,
                      knownHosts: SSHKnownHosts(path: knownHosts ?? self.knownHosts))
    }

    /// A new key pair in `directory`, not authorised on the server.
    static func keyPair(in directory: String, name: String) throws -> (privateKey: String, publicKey: String) {
        let path = directory + "/" + name
        let result = try ProcessRunner.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path])
        guard result.status == 0 else { throw FixtureError("ssh-keygen failed: \(result.stderr)") }
        return (path, path + ".pub")
    }

    /// Runs `body` with sshd on `port`, stopped and cleaned up afterwards;
    /// `options` are git-sshd.sh's (GIT_SSHD_IPV6, GIT_SSHD_PASSWORD).
    static func with<T>(port: Int, options: [String: String] = [:], _ body: (SSHRemote) throws -> T) throws -> T {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let served = directory + "/served"
        try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
        let bare = try LedgerFixtures.bareRepository(in: served)
        let keys = try keyPair(in: directory, name: "client")
        try FileManager.default.copyItem(atPath: keys.publicKey, toPath: served + "/authorized_keys")
        let script = LedgerFixtures.repoRoot + "/scripts/git-sshd.sh"
        let start = try ProcessRunner.run("/bin/bash", [script, "start", served, String(port)], environment: options)
        guard start.status == 0 else { throw FixtureError("git-sshd.sh start failed: \(start.stderr)") }
        defer { _ = try? ProcessRunner.run("/bin/bash", [script, "stop", served]) }
        let line = try String(contentsOfFile: served + "/known_hosts_line", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let knownHosts = directory + "/known_hosts"
        try (line + "\n").write(toFile: knownHosts, atomically: true, encoding: .utf8)
        return try body(SSHRemote(url: "ssh://root@127.0.0.1:\(port)\(bare)", bare: bare, directory: directory,
                                  privateKey: keys.privateKey, publicKey: keys.publicKey, knownHosts: knownHosts,
                                  knownHostsLine: line, port: port))
    }
}
