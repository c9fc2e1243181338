import Foundation
import Testing
import TestSupport
@testable import Runner

/// One parser decides every grid URL's transport (docs/ARCHITECTURE.md §6,
/// "Remotes"): each of Git's spellings, the SSH server it names, what libgit2
/// is given, and which credentials it may receive. Before this parser, the CLI
/// and the ledger each had a rule and disagreed (scp-like remotes got a token;
/// ssh+git:// was accepted by one and refused by the other).
@Suite(.unit) struct RemoteLocationTests {
    struct SSHCase: CustomStringConvertible, Sendable {
        let remote: String
        let user: String?
        let host: String
        let port: Int
        let path: String
        /// What libgit2 must be given.
        let url: String
        var description: String { remote }
    }

    static let sshCases: [SSHCase] = [
        SSHCase(remote: "ssh://git@example.com/o/r.git", user: "git", host: "example.com", port: 22, path: "/o/r.git",
                url: "ssh://git@example.com:22/o/r.git"),
        SSHCase(remote: "ssh://example.com:2222/srv/grid.git", user: nil, host: "example.com", port: 2222, path: "/srv/grid.git",
                url: "ssh://example.com:2222/srv/grid.git"),
        SSHCase(remote: "SSH://Git@Example.com/g.git", user: "Git", host: "Example.com", port: 22, path: "/g.git",
                url: "ssh://Git@Example.com:22/g.git"),
        SSHCase(remote: "ssh+git://git@example.com:2200/g.git", user: "git", host: "example.com", port: 2200, path: "/g.git",
                url: "ssh://git@example.com:2200/g.git"),
        SSHCase(remote: "git+ssh://example.com/~/g.git", user: nil, host: "example.com", port: 22, path: "/~/g.git",
                url: "ssh://example.com:22/~/g.git"),
        SSHCase(remote: "ssh://git@[::1]:2200/r.git", user: "git", host: "::1", port: 2200, path: "/r.git",
                url: "ssh://git@[::1]:2200/r.git"),
        SSHCase(remote: "ssh://[fe80::1]/r.git", user: nil, host: "fe80::1", port: 22, path: "/r.git",
                url: "ssh://[fe80::1]:22/r.git"),
        // scp-like: the path is the server's (relative to the login's home), so libgit2 gets it as written.
        SSHCase(remote: "git@github.com:o/r.git", user: "git", host: "github.com", port: 22, path: "o/r.git",
                url: "git@github.com:o/r.git"),
        SSHCase(remote: "host:grid.git", user: nil, host: "host", port: 22, path: "grid.git", url: "host:grid.git"),
        SSHCase(remote: "git@10.0.0.7:/srv/a:b.git", user: "git", host: "10.0.0.7", port: 22, path: "/srv/a:b.git",
                url: "git@10.0.0.7:/srv/a:b.git"),
        SSHCase(remote: "[git@host.example:2222]:grid.git", user: "git", host: "host.example", port: 2222, path: "grid.git",
                url: "[git@host.example:2222]:grid.git"),
        SSHCase(remote: "[host.example:2222]:/srv/grid.git", user: nil, host: "host.example", port: 2222, path: "/srv/grid.git",
                url: "[host.example:2222]:/srv/grid.git"),
        // libgit2 1.5 cannot resolve an scp-like IPv6 host: it gets the URL form.
        SSHCase(remote: "[::1]:/srv/grid.git", user: nil, host: "::1", port: 22, path: "/srv/grid.git",
                url: "ssh://[::1]:22/srv/grid.git"),
        SSHCase(remote: "git@[2001:db8::5]:~/grid.git", user: "git", host: "2001:db8::5", port: 22, path: "~/grid.git",
                url: "ssh://git@[2001:db8::5]:22/~/grid.git"),
    ]

    @Test(arguments: sshCases)
    func sshSpellings(_ expected: SSHCase) throws {
        let location = try RemoteLocation.parse(expected.remote)
        guard case .ssh(let endpoint) = location else {
            Issue.record("\(expected.remote) is SSH, parsed as \(location)")
            return
        }
        #expect(endpoint.user == expected.user)
        #expect(endpoint.host == expected.host)
        #expect(endpoint.port == expected.port)
        #expect(endpoint.path == expected.path)
        #expect(location.url == expected.url)
        #expect(location.transport == .ssh)
    }

    @Test(arguments: [
        ("/srv/grid.git", "/srv/grid.git"),
        ("file:///srv/grid.git", "/srv/grid.git"),
        ("FILE:///srv/a%20b.git", "/srv/a b.git"),
        ("/srv/a:b/grid.git", "/srv/a:b/grid.git"),
        ("file:///srv/a:b/grid.git", "/srv/a:b/grid.git"),
    ])
    func localSpellings(remote: String, path: String) throws {
        #expect(try RemoteLocation.parse(remote) == .local(path: path))
    }

    /// A local path is handed to libgit2 as a file:// URL: as a bare path with a
    /// colon in it, libgit2 would pick its SSH transport.
    @Test func localPathsReachLibgit2AsFileURLs() throws {
        let cwd = FileManager.default.currentDirectoryPath
        let relative = try RemoteLocation.parse("./a:b")
        #expect(relative == .local(path: cwd + "/./a:b"))
        #expect(relative.url.hasPrefix("file:///") && !relative.url.dropFirst(7).contains(":"), "\(relative.url)")
        #expect(try RemoteLocation.parse("a/b:c") == .local(path: cwd + "/a/b:c"))
        #expect(try RemoteLocation.parse("grid.git") == .local(path: cwd + "/grid.git"))
        #expect(RemoteLocation.local(path: "/srv/a b%:c.git").url == "file:///srv/a%20b%25%3Ac.git")
    }

    @Test(arguments: [
        ("git://127.0.0.1:9418/grid.git", RemoteLocation.Transport.git),
        ("GIT://example.com/grid.git", .git),
        ("http://127.0.0.1:8080/git/grid.git", .http),
        ("https://github.com/o/r.git", .http),
        ("HTTPS://github.com/o/r.git", .http),
    ])
    func networkSpellings(remote: String, transport: RemoteLocation.Transport) throws {
        let location = try RemoteLocation.parse(remote)
        #expect(location.transport == transport)
        #expect(location.url == remote, "libgit2 gets the URL as written")
    }

    @Test(arguments: [
        "", "ftp://example.com/grid.git", "file://relative/path", "http:///grid.git",
        "ssh://git:secret@example.com/grid.git", "ssh://host:99999/g.git", "ssh://host:/g.git", "ssh://host",
        "ssh://host/", "ssh://[::1/g.git", "ssh://h%6fst/g.git", "ssh://host/it's.git", "host:", "@host:g.git",
        "us er@host:g.git", "[::1]:relative.git", "[host]:g.git", "[git@host:port]:g.git", "file:///srv/%zz.git",
        "git@host:g.git\nssh://evil/", "ssh://host/g.git\u{1b}[2J",
    ])
    func refusals(remote: String) throws {
        let error = try #require(throws: LedgerError.self) { try RemoteLocation.parse(remote) }
        #expect(error.kind == .invalidRemote, "\(error)")
        #expect(!error.hint.isEmpty)
        #expect(!"\(error)".contains("secret"))
    }

    /// A token is admitted by http(s) remotes only; SSH keys and the agent by SSH only.
    @Test func credentialsFollowTheTransport() throws {
        let token = GitCredentials.token("tok-123456")
        let key = GitCredentials.sshKey(privateKeyPath: "/k", publicKeyPath: nil, passphrase: nil)
        for remote in ["git@host:g.git", "host:g.git", "ssh+git://host/g.git", "git+ssh://host/g.git", "[::1]:/g.git",
                       "ssh://host/g.git"] {
            let location = try RemoteLocation.parse(remote)
            #expect(!location.admits(token), "\(remote)")
            #expect(location.admits(key) && location.admits(.sshAgent) && location.admits(.none), "\(remote)")
            guard case .sshAgent = location.credentials(token: token, ssh: { .sshAgent }) else {
                Issue.record("\(remote) did not get the SSH credentials")
                continue
            }
        }
        for remote in ["https://h/g.git", "http://h/g.git"] {
            let location = try RemoteLocation.parse(remote)
            #expect(location.admits(token) && !location.admits(key) && !location.admits(.sshAgent))
            guard case .token = location.credentials(token: token, ssh: { Issue.record("asked for SSH keys"); return .sshAgent })
            else { Issue.record("\(remote) did not get the token"); continue }
        }
        for remote in ["git://h/g.git", "/srv/g.git", "file:///srv/g.git"] {
            let location = try RemoteLocation.parse(remote)
            #expect(!location.admits(token) && !location.admits(key))
            guard case .none = location.credentials(token: token, ssh: { .sshAgent }) else {
                Issue.record("\(remote) got credentials")
                continue
            }
        }
    }

    /// The ledger refuses a pairing the transport does not admit, before any connection.
    @Test func ledgerRefusesATokenForAnSSHRemote() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for remote in ["git@127.0.0.1:grid.git", "ssh+git://127.0.0.1/grid.git", "[root@127.0.0.1:2222]:/grid.git"] {
            let error = try #require(throws: LedgerError.self) {
                try GitLedger(remote: remote, mirrorPath: directory + "/m", credentials: .token("tok-Zq8xK2mN4vB7"))
            }
            #expect(error.kind == .credentials, "\(error)")
            #expect(!"\(error)".contains("tok-Zq8xK2mN4vB7"))
        }
    }
}
