import Foundation
import Testing
import TestSupport
@testable import Runner

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(4)

/// The ledger over ssh:// against a real OpenSSH server on loopback
/// (scripts/git-sshd.sh): key authentication through libgit2's credential callback,
/// the claim race decided by the server's receive-pack, and host keys verified
/// against a known_hosts file before any credential is offered.
@Suite(.system, .serialized) struct LedgerSSHTests {
    @Test func roundTrip() throws {
        try SSHRemote.with(port: suitePorts[0]) { ssh in
            let writer = try ssh.ledger("writer")
            let commit = try writer.commit(parent: nil, changes: [
                LedgerChange(path: "tasks/queue/t1.json", content: LedgerFixtures.bytes("{\"task_id\":\"t1\"}")),
                LedgerChange(path: "nodes/n1.json", content: LedgerFixtures.bytes("{\"node_id\":\"n1\"}")),
            ], message: "submit t1")
            #expect(try writer.createRef("refs/heads/main", target: commit) == .applied)
            #expect(try LedgerFixtures.git(["rev-parse", "refs/heads/main"], in: ssh.bare) == commit.hex)

            let reader = try ssh.ledger("reader")
            #expect(try reader.remoteRefs(prefix: "refs/heads/") == ["refs/heads/main": commit])
            try reader.fetch(["refs/heads/main"])
            let tree = try reader.tree(of: commit)
            #expect(Set(tree.keys) == ["tasks/queue/t1.json", "nodes/n1.json"])
            let blob = try #require(tree["tasks/queue/t1.json"])
            #expect(try reader.blob(blob, limit: 1024) == LedgerFixtures.bytes("{\"task_id\":\"t1\"}"))

            // Fast-forward and delete go over ssh too.
            try writer.fetch(["refs/heads/main"])
            let next = try writer.commit(parent: commit, changes: [LedgerChange(path: "nodes/n1.json", content: nil)],
                                         message: "fold")
            #expect(try writer.updateRef("refs/heads/main", from: commit, to: next) == .applied)
            guard case .rejected = try reader.updateRef("refs/heads/main", from: commit, to: commit) else {
                Issue.record("an update from a stale value was applied")
                return
            }
            #expect(try writer.deleteRef("refs/heads/main", expected: next) == .applied)
            #expect(try reader.remoteRefs(prefix: "refs/heads/").isEmpty)
        }
    }

    @Test func createRefRaceHasExactlyOneWinner() throws {
        try SSHRemote.with(port: suitePorts[1]) { ssh in
            let ledgers = try [ssh.ledger("a"), ssh.ledger("b")]
            for round in 0..<4 {
                let name = "refs/dgrid/claims/t\(round)"
                let commits = try ledgers.enumerated().map { index, ledger in
                    try ledger.commit(parent: nil, changes: [
                        LedgerChange(path: "claim.json", content: LedgerFixtures.bytes("{\"node\":\"n\(index)\"}")),
                    ], message: "claim t\(round) by n\(index)")
                }
                let outcomes = try race(2) { index in try ledgers[index].createRef(name, target: commits[index]) }
                let winners = outcomes.indices.filter { outcomes[$0] == .applied }
                #expect(winners.count == 1, "round \(round): \(outcomes)")
                let winner = try #require(winners.first)
                #expect(try LedgerFixtures.git(["rev-parse", name], in: ssh.bare) == commits[winner].hex)
                #expect(try LedgerFixtures.git(["cat-file", "-p", "\(name):claim.json"], in: ssh.bare)
                    == "{\"node\":\"n\(winner)\"}")
            }
            #expect(try LedgerFixtures.git(["for-each-ref", "refs/dgrid-push/"], in: ssh.bare).isEmpty)
        }
    }

    @Test func wrongKeyIsRefusedCleanly() throws {
        try SSHRemote.with(port: suitePorts[2]) { ssh in
            let wrong = try SSHRemote.keyPair(in: ssh.directory, name: "stranger")
            let ledger = try ssh.ledger("mirror", credentials: .sshKey(privateKeyPath: wrong.privateKey,
                                                                        publicKeyPath: wrong.publicKey, passphrase: nil))
            let error = try #require(throws: LedgerError.self) { try ledger.remoteRefs() }
            #expect(error.kind == .authentication, "\(error)")
            #expect("\(error)".contains("SSH key"), "the hint says what to check: \(error)")
            // No key material: neither key's base64 body, nor the private key file's content.
            let text = "\(error)"
            for file in [wrong.privateKey, wrong.publicKey, ssh.privateKey, ssh.publicKey] {
                let content = try String(contentsOfFile: file, encoding: .utf8)
                for line in content.split(whereSeparator: \.isNewline) where !line.hasPrefix("-----") {
                    for word in line.split(separator: " ") where word.count >= 16 {
                        #expect(!text.contains(word), "error text holds key material from \(file)")
                    }
                }
            }
            // Writes are refused the same way, and nothing reached the remote.
            let commit = try ledger.commit(parent: nil, changes: [LedgerChange(path: "x", content: [1])], message: "x")
            let pushError = try #require(throws: LedgerError.self) { try ledger.createRef("refs/heads/main", target: commit) }
            #expect(pushError.kind == .authentication, "\(pushError)")
            #expect(try LedgerFixtures.git(["for-each-ref"], in: ssh.bare).isEmpty)
        }
    }

    /// The server's key must be in the known_hosts file: missing file, no line for
    /// the host, a line for port 22 only, and a different key are all refused with
    /// `.hostKey`; a hashed line (ssh-keygen -H) is accepted.
    @Test func hostKeysAreVerifiedAgainstKnownHosts() throws {
        try SSHRemote.with(port: suitePorts[3]) { ssh in
            let fields = ssh.knownHostsLine.split(separator: " ")
            let keyPart = fields.dropFirst().joined(separator: " ")
            let other = try SSHRemote.keyPair(in: ssh.directory, name: "impostor")
            let otherKey = try String(contentsOfFile: other.publicKey, encoding: .utf8).split(separator: " ").prefix(2)
                .joined(separator: " ")
            func knownHosts(_ name: String, _ content: String?) throws -> String {
                let path = ssh.directory + "/" + name
                if let content { try content.write(toFile: path, atomically: true, encoding: .utf8) }
                return path
            }
            let refusals: [(String, String?, String)] = [
                ("missing", nil, "is unknown"),
                ("empty", "# nothing yet\n", "is unknown"),
                ("other-host", "[127.0.0.2]:\(ssh.port) \(keyPart)\n", "is unknown"),
                ("port-22-only", "127.0.0.1 \(keyPart)\n", "is unknown"),
                ("changed", "[127.0.0.1]:\(ssh.port) \(otherKey)\n", "does not match"),
                ("negated", "[127.0.0.1]:\(ssh.port),![127.0.0.1]:\(ssh.port) \(keyPart)\n[127.0.0.1]:*,![127.0.0.1]:\(ssh.port) \(keyPart)\n",
                 "is unknown"),
                ("revoked", "\(ssh.knownHostsLine)\n@revoked * \(keyPart)\n", "@revoked"),
            ]
            for (name, content, expected) in refusals {
                let ledger = try ssh.ledger("mirror-\(name)", knownHosts: try knownHosts(name, content))
                let error = try #require(throws: LedgerError.self, "\(name)") { try ledger.remoteRefs() }
                #expect(error.kind == .hostKey, "\(name): \(error)")
                #expect(error.message.contains(expected), "\(name): \(error)")
                #expect(error.message.contains("127.0.0.1"), "\(name): \(error)")
                #expect(error.hint.contains("ssh-keyscan") || expected != "is unknown", "\(name): \(error)")
            }

            // Accepted: the exact line, a wildcard, and the line hashed by ssh-keygen -H.
            let hashed = try knownHosts("hashed", ssh.knownHostsLine + "\n")
            let hash = try ProcessRunner.run("/usr/bin/ssh-keygen", ["-H", "-f", hashed])
            try #require(hash.status == 0, "ssh-keygen -H: \(hash.stderr)")
            #expect(try String(contentsOfFile: hashed, encoding: .utf8).hasPrefix("|1|"))
            let accepted = [
                ssh.knownHosts, hashed,
                try knownHosts("wildcard", "# comment\n\n[127.0.0.?]:\(ssh.port) \(otherKey)\n[127.0.0.*]:* \(keyPart) comment\n"),
            ]
            for path in accepted {
                let ledger = try ssh.ledger("mirror-ok-\((path as NSString).lastPathComponent)", knownHosts: path)
                #expect(try ledger.remoteRefs().isEmpty, "\(path)")
            }
        }
    }

    @Test func knownHostsComesFromTheEnvironment() throws {
        let saved = getenv(SSHKnownHosts.environmentVariable).map { String(cString: $0) }
        defer {
            if let saved { setenv(SSHKnownHosts.environmentVariable, saved, 1) } else {
                unsetenv(SSHKnownHosts.environmentVariable)
            }
        }
        setenv(SSHKnownHosts.environmentVariable, "/etc/dgrid/known_hosts", 1)
        #expect(SSHKnownHosts.fromEnvironment().path == "/etc/dgrid/known_hosts")
        unsetenv(SSHKnownHosts.environmentVariable)
        #expect(SSHKnownHosts.fromEnvironment().path.hasSuffix("/.ssh/known_hosts"))
    }

    @Test func sha1MatchesKnownVectors() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(SHA1.hash([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hex(SHA1.hash(Array(String(repeating: "a", count: 1000).utf8)))
            == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
        // RFC 2202 test cases 1 and 6 (a key longer than the block).
        #expect(hex(SHA1.hmac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
            == "b617318655057264e28bc0b6fb378c8ef146be00")
        #expect(hex(SHA1.hmac(key: [UInt8](repeating: 0xaa, count: 80),
                              message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "aa4ae5e15272d00e95705637ce8a3b55ed402112")
    }
}
