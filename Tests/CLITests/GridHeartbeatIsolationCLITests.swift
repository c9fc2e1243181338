import Foundation
import Testing
import TestSupport

private let suitePorts = FreePort.loopbackPorts(2)

/// A worker's heartbeat does not queue behind its bulk Git work (docs/THREATS.md: a
/// dripping remote). Before, one lock serialised every Git operation of the
/// worker: a listing or fetch stalled by a slow remote held it, the heartbeat
/// waited, and a running task's lease lapsed — another worker took the task
/// and it ran twice. Here a proxy in front of `git daemon` drips every listing
/// and fetch (one byte a second) once the task runs, while pushes — claims,
/// renewals — go through: the running task's lease must keep moving forward.
@Suite(.system, .serialized) struct GridHeartbeatIsolationCLITests {
    static let daemonPort = suitePorts[0]
    static let proxyPort = suitePorts[1]

    @Test func aRunningTasksLeaseIsRenewedWhileTheWorkersFetchesAreStalled() throws {
        let base = try TempDir.make(prefix: "dgrid-heartbeat").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let bare = base + "/grid.git"
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", bare]).status == 0)
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        #expect(try ProcessRunner.run(script, ["start", base, "\(Self.daemonPort)"]).status == 0)
        defer { _ = try? ProcessRunner.run(script, ["stop", base]) }
        let proxy = try DripProxy(port: Self.proxyPort, upstreamPort: Self.daemonPort, mode: .uploadPackWhileFlagged,
                                  directory: base)
        defer { proxy.stop() }
        let url = "git://127.0.0.1:\(Self.proxyPort)/grid.git"

        let home = try GridFixture.workerHome()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = base + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        try GridFixture.taskFile(tasks, "long", "sleep 40; echo done", timeout: 120)
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        // Two slots: one runs the task, the other keeps polling (listing, fetching).
        let log = base + "/worker.log"
        let worker = try GridFaultCLITests.launch(
            ["worker", "--repo", url, "--node-id", "node_a", "--slots", "2", "--lease", "4"], home: home, log: log,
            environment: ["HEARTBEAT_INTERVAL": "1", "PULL_INTERVAL": "0.3"])
        defer {
            kill(worker.processIdentifier, SIGKILL)
            worker.waitUntilExit()
        }
        func workerLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let claimed = try GridFaultCLITests.waitUntil(30) { try Self.leaseUntil(bare, "long") != nil }
        try #require(claimed, "never claimed: \(workerLog())")

        // From now on every listing and fetch drips; the idle slot's next poll stalls in one.
        FileManager.default.createFile(atPath: proxy.flagPath, contents: nil)
        let stalled = GridFaultCLITests.waitUntil(30) { FileManager.default.fileExists(atPath: proxy.drippingPath) }
        try #require(stalled, "no listing or fetch reached the stalled proxy: \(workerLog())")

        let first = try #require(try Self.leaseUntil(bare, "long"))
        var lapsed: [String] = []
        let renewed = try GridFaultCLITests.waitUntil(15) {
            guard let until = try Self.leaseUntil(bare, "long") else { return false }
            if until < Date() { lapsed.append("\(until)") }
            // Renewed every second with a 4 s lease: three renewals past the first reading.
            return until.timeIntervalSince(first) >= 3
        }
        #expect(renewed, "the lease stayed at \(first) while the fetches were stalled: \(workerLog())")
        #expect(lapsed.isEmpty, "the lease lapsed: \(lapsed)")
        let claim = try GridFixture.git(["--git-dir", bare, "show", "refs/dgrid/claims/long:claim.json"]).stdout
        #expect(claim.contains("\"node_a\""), "\(claim)")
    }

    /// lease_until of the task's claim on the remote; nil while there is none.
    static func leaseUntil(_ bare: String, _ task: String) throws -> Date? {
        let shown = try GridFixture.git(["--git-dir", bare, "show", "refs/dgrid/claims/\(task):claim.json"])
        guard shown.status == 0,
              let record = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any],
              let text = record["lease_until"] as? String else { return nil }
        return ISO8601DateFormatter().date(from: text)
    }
}
