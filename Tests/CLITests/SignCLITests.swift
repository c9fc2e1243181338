import Foundation
import Testing
import TestSupport

/// `dgrid sign` and `dgrid verify` through the built binary (docs/ARCHITECTURE.md
/// §9), with OpenSSH's real ssh-keygen and ssh-agent: dgrid's signatures
/// verify with `ssh-keygen -Y verify`, several signers append to one `.sig`,
/// an agent-held key signs, and `verify` says who signed or why not.
@Suite(.system, .serialized)
struct SignCLITests {
    final class Setup {
        let dir: String
        let home: ImageCLITests.Home
        let repo: String
        var url: String { "file://" + repo }
        var trust: String { home.path + "/trust" }

        init() throws {
            dir = try TempDir.make(prefix: "dgrid-sign").path
            home = try ImageCLITests.Home()
            repo = try GridFixture.bareRepository()
            chmod(home.path, 0o700)
            #expect(try home.dgrid("init", "--repo", url).status == 0)
            for name in ["alice", "bob"] {
                try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", dir + "/" + name])
            }
        }

        deinit {
            for path in [dir, home.path, repo] { try? FileManager.default.removeItem(atPath: path) }
        }

        func publicKey(_ name: String) throws -> String {
            try String(contentsOfFile: dir + "/" + name + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func trust(_ lines: [String]) throws {
            try FileManager.default.createDirectory(atPath: trust, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try (lines.joined(separator: "\n") + "\n").write(toFile: trust + "/allowed_signers", atomically: false, encoding: .utf8)
            chmod(trust + "/allowed_signers", 0o644)
        }

        func task(_ id: String) throws -> String {
            try GridFixture.taskFile(dir, id, "echo \(id)")
            return dir + "/" + id + ".json"
        }
    }

    @Test func signedFilesVerifyHereAndWithSSHKeygen() throws {
        let s = try Setup()
        let file = try s.task("t1")
        let signed = try s.home.dgrid("sign", "--key", s.dir + "/alice", "--repo", s.url, file)
        #expect(signed.status == 0, "\(signed.stderr)")
        // The file now names the grid, and the signature covers that version.
        let grid = try GridFixture.status(s.home, s.url)["grid_id"] as? String
        let task = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any]
        #expect(grid != nil && task?["grid"] as? String == grid)

        var verified = try s.home.dgrid("verify", "--repo", s.url, file)
        #expect(verified.status == 1 && verified.stdout.contains("refused: signed by SHA256:") && verified.stdout.contains("not in this host's allowed_signers"),
                "\(verified.stdout)")
        try s.trust(["alice@example.com \(try s.publicKey("alice"))"])
        verified = try s.home.dgrid("verify", "--repo", s.url, file)
        #expect(verified.status == 0 && verified.stdout.contains("signed by alice@example.com (SHA256:"), "\(verified.stdout)\(verified.stderr)")
        let openssh = try ProcessRunner.run("/bin/sh", ["-c", "ssh-keygen -Y verify -f '\(s.trust)/allowed_signers' -I alice@example.com -n dgrid-task -s '\(file).sig' < '\(file)'"])
        #expect(openssh.status == 0, "\(openssh.stdout)\(openssh.stderr)")

        // One byte changed after signing: refused, exit 1.
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try text.replacingOccurrences(of: "echo t1", with: "echo T1").write(toFile: file, atomically: false, encoding: .utf8)
        verified = try s.home.dgrid("verify", "--repo", s.url, file)
        #expect(verified.status == 1 && verified.stdout.contains("does not match the file's bytes"), "\(verified.stdout)")
    }

    @Test func twoSignersAppendToOneSignatureFile() throws {
        let s = try Setup()
        try s.trust(["alice@example.com \(try s.publicKey("alice"))", "bob@example.com \(try s.publicKey("bob"))"])
        try FileManager.default.createDirectory(atPath: s.trust, withIntermediateDirectories: true)
        try "min_signers = 2\n".write(toFile: s.trust + "/policy.toml", atomically: false, encoding: .utf8)
        chmod(s.trust + "/policy.toml", 0o600)
        let file = try s.task("t2")
        #expect(try s.home.dgrid("sign", "--key", s.dir + "/alice", "--repo", s.url, file).status == 0)
        var verified = try s.home.dgrid("verify", "--repo", s.url, file)
        #expect(verified.status == 1 && verified.stdout.contains("needs 2 distinct trusted signers, has 1"), "\(verified.stdout)")
        #expect(try s.home.dgrid("sign", "--key", s.dir + "/bob", "--repo", s.url, file).status == 0)
        verified = try s.home.dgrid("verify", "--repo", s.url, file)
        #expect(verified.status == 0 && verified.stdout.contains("alice@example.com") && verified.stdout.contains("bob@example.com"),
                "\(verified.stdout)")
    }

    @Test func aKeyInSSHAgentSignsThroughItsPublicHalf() throws {
        let s = try Setup()
        let socket = s.dir + "/agent.sock"
        // In the foreground (-D): a daemon would keep the descriptors Foundation
        // watches for its exit. Killed at the end of the test.
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-agent")
        agent.arguments = ["-D", "-a", socket]
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = FileHandle.nullDevice
        agent.standardInput = FileHandle.nullDevice
        try agent.run()
        // SIGKILL: the test process may have SIGTERM blocked, and a child inherits the mask.
        defer { kill(agent.processIdentifier, SIGKILL); agent.waitUntilExit() }
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket), Date() < deadline { usleep(20_000) }
        #expect(try ProcessRunner.run("/usr/bin/env", ["SSH_AUTH_SOCK=\(socket)", "ssh-add", "-q", s.dir + "/alice"]).status == 0)
        // Only the public half on disk: the private key is the agent's.
        try FileManager.default.removeItem(atPath: s.dir + "/alice")
        let file = try s.task("t3")
        let signed = try CLI.run(["sign", "--key", s.dir + "/alice.pub", "--repo", s.url, file],
                                 environment: ["DGRID_HOME": s.home.path, "SSH_AUTH_SOCK": socket])
        #expect(signed.status == 0, "\(signed.stderr)")
        try s.trust(["alice@example.com \(try s.publicKey("alice"))"])
        #expect(try s.home.dgrid("verify", "--repo", s.url, file).stdout.contains("signed by alice@example.com"))
    }

    /// An SSH CA vouches for many users (`cert-authority`): a task signed with
    /// a certificate the CA issued verifies as the certificate's principal.
    @Test func aCertificateFromATrustedCASignsAsItsPrincipal() throws {
        let s = try Setup()
        try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ca", "-f", s.dir + "/ca"])
        try Shell.check(["ssh-keygen", "-q", "-s", s.dir + "/ca", "-I", "alice-laptop", "-n", "alice@example.com", "-V", "-5m:+1h", s.dir + "/alice.pub"])
        try s.trust(["*@example.com cert-authority,namespaces=\"dgrid-task\" \(try s.publicKey("ca"))"])
        let file = try s.task("t-cert")
        let signed = try s.home.dgrid("sign", "--key", s.dir + "/alice-cert.pub", "--repo", s.url, file)
        #expect(signed.status == 0, "\(signed.stderr)")
        let verified = try s.home.dgrid("verify", "--repo", s.url, file)
        #expect(verified.status == 0 && verified.stdout.contains("signed by alice@example.com"), "\(verified.stdout)\(verified.stderr)")
        // Bob's plain key is no certificate: the CA's line does not vouch for it.
        let other = try s.task("t-bob")
        #expect(try s.home.dgrid("sign", "--key", s.dir + "/bob", "--repo", s.url, other).status == 0)
        let refused = try s.home.dgrid("verify", "--repo", s.url, other)
        #expect(refused.status == 1 && refused.stdout.contains("not in this host's allowed_signers"), "\(refused.stdout)")
    }

    @Test func signingWithAMissingKeySaysWhatToDo() throws {
        let s = try Setup()
        let file = try s.task("t4")
        let r = try s.home.dgrid("sign", "--key", s.dir + "/nobody", "--repo", s.url, file)
        #expect(r.status != 0 && r.stderr.contains("does not exist") && r.stderr.contains("ssh-keygen -t ed25519"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: file + ".sig"))
    }
}
