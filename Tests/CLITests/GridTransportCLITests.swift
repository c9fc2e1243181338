import Foundation
import Testing
import TestSupport

private let suitePorts = FreePort.loopbackPorts(2)

/// The grid end to end over the authenticated transports, through the built
/// binaries: smart HTTP behind a real web server (lighttpd + git-http-backend,
/// basic auth) and SSH (openssh-server, key auth, host key checked). The
/// servers are the project's own scripts on loopback.
@Suite(.system, .serialized) struct GridTransportCLITests {
    static let httpPort = suitePorts[0]
    static let sshPort = suitePorts[1]
    static let token = "dgrid-cli-token-Hq7Vb2Kx9Lm4"

    /// Three tasks, one printing its environment: the token must not be in it.
    static func submitSample(_ home: ImageCLITests.Home, _ base: String, _ args: [String],
                             environment: [String: String] = [:]) throws {
        let tasks = base + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        try GridFixture.taskFile(tasks, "hello", "echo hello")
        try GridFixture.taskFile(tasks, "env", "env")
        try GridFixture.taskFile(tasks, "fails", "exit 3")
        let submitted = try CLI.run(["submit"] + args + [tasks], environment: ["DGRID_HOME": home.path].merging(environment) { $1 })
        #expect(submitted.status == 0, "\(submitted.stderr)")
    }

    /// A scratch directory with `served/grid.git`, an empty bare repository a server will serve.
    static func servedGrid(_ name: String) throws -> (base: String, served: String, repo: String) {
        let base = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-\(name)-\(UUID().uuidString.prefix(8))")
        let served = base + "/served"
        try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
        let repo = served + "/grid.git"
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", repo]).status == 0)
        return (base, served, repo)
    }

    /// What every transport must end with: three results folded where D-GRID looks.
    static func expectDrained(_ repo: String, node: String) throws {
        let files = try GridFixture.mainFiles(repo)
        #expect(files.contains("tasks/completed/\(node)-hello.json"), "\(files)")
        #expect(files.contains("tasks/completed/\(node)-env.json"), "\(files)")
        #expect(files.contains("tasks/failed/\(node)-fails.json"), "\(files)")
        #expect(!files.contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") })
        #expect(files.contains("nodes/\(node).json"))
    }

    @Test func smartHTTPBehindBasicAuthWithTokenFileOrGitToken() throws {
        let (base, served, repo) = try Self.servedGrid("http")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let tokenFile = base + "/token"
        FileManager.default.createFile(atPath: tokenFile, contents: Data((Self.token + "\n").utf8), attributes: [.posixPermissions: 0o600])
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-http.sh").path
        let started = try ProcessRunner.run("/bin/bash", ["-c", "exec \"$0\" start \"$1\" \"$2\" x-access-token < \"$3\"",
                                                          script, served, "\(Self.httpPort)", tokenFile])
        try #require(started.status == 0, "\(started.stderr)")
        defer { _ = try? ProcessRunner.run("/bin/bash", [script, "stop", served]) }
        let url = "http://127.0.0.1:\(Self.httpPort)/git/grid.git"
        let home = try GridFixture.workerHome()

        // A wrong token: one clear line, non-zero, the token not echoed, nothing written.
        let wrongFile = base + "/wrong"
        FileManager.default.createFile(atPath: wrongFile, contents: Data("not-the-token-Zq81\n".utf8), attributes: [.posixPermissions: 0o600])
        let refused = try home.dgrid("init", "--repo", url, "--token-file", wrongFile)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("token"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("not-the-token-Zq81") && !refused.stdout.contains("not-the-token-Zq81"))
        #expect(try GridFixture.refs(repo, "refs/").isEmpty)

        #expect(try home.dgrid("init", "--repo", url, "--token-file", tokenFile).status == 0)
        // D-GRID's way: GIT_TOKEN in the environment, read once and removed.
        try Self.submitSample(home, base, ["--repo", url], environment: ["GIT_TOKEN": Self.token])
        let worker = try CLI.run(["worker", "--repo", url, "--node-id", "http_node", "--once"],
                                 environment: ["DGRID_HOME": home.path, "GIT_TOKEN": Self.token])
        #expect(worker.status == 0, "\(worker.stderr)")
        #expect(!worker.stderr.contains(Self.token))
        try Self.expectDrained(repo, node: "http_node")
        let env = try GridFixture.show(repo, "tasks/completed/http_node-env.json.log")
        #expect(env.contains("PATH="), "the env task printed its environment: \(env)")
        #expect(!env.contains(Self.token) && !env.contains("GIT_TOKEN"), "the token reached a task: \(env)")
    }

    @Test func sshWithAKeyAndAKnownHostKeyAndAnUnknownHostRefused() throws {
        let (base, served, repo) = try Self.servedGrid("ssh")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let key = base + "/client"
        #expect(try ProcessRunner.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "dgrid-test", "-f", key]).status == 0)
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: served + "/authorized_keys")
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-sshd.sh").path
        let started = try ProcessRunner.run("/bin/bash", [script, "start", served, "\(Self.sshPort)"])
        try #require(started.status == 0, "\(started.stderr)")
        defer { _ = try? ProcessRunner.run("/bin/bash", [script, "stop", served]) }
        let knownHosts = base + "/known_hosts"
        try (try String(contentsOfFile: served + "/known_hosts_line", encoding: .utf8)).write(toFile: knownHosts, atomically: true, encoding: .utf8)
        let url = "ssh://root@127.0.0.1:\(Self.sshPort)\(repo)"
        let home = try GridFixture.workerHome()
        let access = ["--ssh-key", key, "--known-hosts", knownHosts]

        // A host whose key is not in known_hosts is refused before any key is offered.
        let empty = base + "/empty_known_hosts"
        FileManager.default.createFile(atPath: empty, contents: Data())
        let unknown = try home.dgrid(["init", "--repo", url, "--ssh-key", key, "--known-hosts", empty])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.lowercased().contains("host key"), "\(unknown.stderr)")
        #expect(try GridFixture.refs(repo, "refs/").isEmpty)

        #expect(try home.dgrid(["init", "--repo", url] + access).status == 0)
        try Self.submitSample(home, base, ["--repo", url] + access)
        let worker = try home.dgrid(["worker", "--repo", url, "--node-id", "ssh_node", "--once"] + access)
        #expect(worker.status == 0, "\(worker.stderr)")
        try Self.expectDrained(repo, node: "ssh_node")
        let status = try home.json(["status", "--repo", url, "--json"] + access)
        #expect((status["node_records"] as? [[String: Any]])?.contains { $0["node_id"] as? String == "ssh_node" } == true, "\(status)")
        #expect(status["completed"] as? Int == 2 && status["failed"] as? Int == 1, "\(status)")
    }
}
