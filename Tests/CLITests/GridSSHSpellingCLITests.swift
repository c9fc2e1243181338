import Foundation
import Testing
import TestSupport

/// A grid named in scp-like form (`[user@host:port]:path`) is SSH to the CLI as
/// to the ledger — one parser decides (docs/ARCHITECTURE.md §6, "Remotes"): it
/// gets the SSH key, never GIT_TOKEN, even from a server that offers password
/// authentication (docs/THREATS.md, "Secrets"). Real OpenSSH on loopback.
@Suite(.system, .serialized) struct GridSSHSpellingCLITests {
    static let token = "dgrid-scp-token-Vq3Lm8Zr2Kx7"

    @Test func scpLikeGridsGetTheSSHKeyAndNeverTheToken() throws {
        let base = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-scp-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let served = base + "/served"
        try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
        let repo = served + "/grid.git"
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", repo]).status == 0)
        let key = base + "/client"
        #expect(try ProcessRunner.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status == 0)
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: served + "/authorized_keys")
        let port = try FreePort.loopback()
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-sshd.sh").path
        let started = try ProcessRunner.run("/bin/bash", [script, "start", served, "\(port)"], environment: ["GIT_SSHD_PASSWORD": "1"])
        try #require(started.status == 0, "\(started.stderr)")
        defer { _ = try? ProcessRunner.run("/bin/bash", [script, "stop", served]) }
        // The key is listed for port 22 as well, so a client that looked the
        // host up on the wrong port would still get as far as authenticating.
        let line = try String(contentsOfFile: served + "/known_hosts_line", encoding: .utf8)
        let hostKey = line.split(separator: " ").dropFirst().joined(separator: " ")
        let knownHosts = base + "/known_hosts"
        try (line + "127.0.0.1 \(hostKey)").write(toFile: knownHosts, atomically: true, encoding: .utf8)
        let home = base + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let environment = ["DGRID_HOME": home, "GIT_TOKEN": Self.token]
        let access = ["--ssh-key", key, "--known-hosts", knownHosts]

        // As root, with the authorised key: the grid is made, whatever GIT_TOKEN says.
        let initialised = try CLI.run(["init", "--repo", "[root@127.0.0.1:\(port)]:\(repo)"] + access, environment: environment)
        #expect(initialised.status == 0, "\(initialised.stderr)")
        #expect(try GridFixture.refs(repo, "refs/heads/").contains("refs/heads/main"))

        // As the token's user name, to a server that offers passwords: refused,
        // and the server never saw a password attempt.
        let refused = try CLI.run(["status", "--repo", "[x-access-token@127.0.0.1:\(port)]:\(repo)"] + access,
                                  environment: environment)
        #expect(refused.status != 0)
        #expect(!refused.stderr.contains(Self.token))
        let log = try String(contentsOfFile: served + "/sshd.log", encoding: .utf8)
        #expect(log.contains("x-access-token"), "the second client reached the server: \(log)")
        #expect(!log.lowercased().contains("password for"), "a password (the token) was offered over SSH: \(log)")
    }
}
