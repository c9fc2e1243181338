import Foundation
import Testing
import TestSupport
@testable import Runner

/// Every SSH spelling reaches a real OpenSSH server on loopback
/// (scripts/git-sshd.sh), with the host key checked for the host and port the
/// remote names, and a token is never offered to it — not even when the server
/// asks for a password (docs/THREATS.md, "Secrets").
@Suite(.system, .serialized) struct LedgerSSHSpellingTests {
    @Test func everySpellingReachesTheServer() throws {
        try SSHRemote.with(port: try FreePort.loopback(), options: ["GIT_SSHD_IPV6": "1"]) { ssh in
            let p = ssh.port, path = ssh.bare
            let spellings = [
                "ssh://root@127.0.0.1:\(p)\(path)", "SSH://root@127.0.0.1:\(p)\(path)",
                "ssh+git://root@127.0.0.1:\(p)\(path)", "git+ssh://root@127.0.0.1:\(p)\(path)",
                "[root@127.0.0.1:\(p)]:\(path)", "ssh://root@[::1]:\(p)\(path)",
            ]
            for (index, remote) in spellings.enumerated() {
                let ledger = try GitLedger(remote: remote, mirrorPath: ssh.directory + "/m\(index)", credentials: ssh.credentials,
                                           knownHosts: SSHKnownHosts(path: ssh.knownHosts))
                #expect(throws: Never.self, "\(remote)") { _ = try ledger.remoteRefs() }
            }
            // The host key is looked up for the port the remote names: a known_hosts
            // file listing the key for port 22 only does not vouch for this server.
            let port22 = ssh.directory + "/known_hosts_22"
            let key = ssh.knownHostsLine.split(separator: " ").dropFirst().joined(separator: " ")
            try "127.0.0.1 \(key)\n".write(toFile: port22, atomically: true, encoding: .utf8)
            let ledger = try GitLedger(remote: "[root@127.0.0.1:\(p)]:\(path)", mirrorPath: ssh.directory + "/m22",
                                       credentials: ssh.credentials, knownHosts: SSHKnownHosts(path: port22))
            let error = try #require(throws: LedgerError.self) { try ledger.remoteRefs() }
            #expect(error.kind == .hostKey && error.message.contains("[127.0.0.1]:\(p)"), "\(error)")
        }
    }

    /// A local grid whose path has a colon in it is read as a local repository:
    /// libgit2, given the bare path, would take it for scp-like SSH.
    @Test func aLocalPathWithAColonStaysLocal() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let parent = directory + "/a:b"
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let bare = try LedgerFixtures.bareRepository(in: parent)
        let ledger = try GitLedger(remote: bare, mirrorPath: directory + "/mirror")
        let commit = try ledger.commit(parent: nil, changes: [LedgerChange(path: "a", content: [1])], message: "m")
        #expect(try ledger.createRef("refs/heads/main", target: commit) == .applied)
        #expect(try ledger.remoteRefs(prefix: "refs/heads/") == ["refs/heads/main": commit])
        #expect(try LedgerFixtures.git(["rev-parse", "refs/heads/main"], in: bare) == commit.hex)
    }
}
