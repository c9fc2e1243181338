import Foundation
import Testing
import TestSupport

/// Health and self-healing (docs/ARCHITECTURE.md §12, "Health"): a disk that
/// fills while a worker runs makes it unhealthy — it stops claiming, says why in
/// its node record, loses nothing — and it claims again once space returns; a
/// Git server that goes away opens the worker's circuit, so the server sees a
/// few probes instead of every slot's polls, and work resumes when it is back.
@Suite(.system, .serialized) struct GridSelfHealingCLITests {
    private func completed(_ repo: String) throws -> [String] {
        try GridFixture.mainFiles(repo).filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix(".json") }
    }

    private func node(_ home: ImageCLITests.Home, _ url: String, _ id: String) -> [String: Any]? {
        let status = (try? GridFixture.status(home, url)) ?? [:]
        return (status["node_records"] as? [[String: Any]])?.first { $0["node_id"] as? String == id }
    }

    @Test func aDiskThatFillsStopsTheClaimsAndTheWorkerResumesWhenSpaceReturns() throws {
        let mount = try TempDir.make(prefix: "dgrid-smallfs").path
        #expect(try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64m,mode=0755", "dgrid-smallfs", mount]).status == 0)
        defer { _ = try? ProcessRunner.run("/bin/umount", ["-l", mount]) }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let submitter = try GridFixture.workerHome()
        let home = try GridFixture.workerHome(parent: mount)
        #expect(try submitter.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-diskfull").path
        try GridFixture.taskFile(tasks, "t1", "echo one")
        #expect(try submitter.dgrid("submit", "--repo", url, tasks + "/t1.json").status == 0)

        let log = tasks + "/worker.log"
        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "disk1"], home: home, log: log, environment: [
            "DGRID_SELF_CHECK_SECONDS": "0.5", "DGRID_MIN_FREE_DISK": "16m", "DGRID_POLL_SECONDS": "0.2",
            "DGRID_POLL_CEILING_SECONDS": "0.5", "DGRID_HEARTBEAT_SECONDS": "0.5", "DGRID_FOLD_INTERVAL_SECONDS": "0",
        ])
        defer { if worker.isRunning { worker.terminate(); worker.waitUntilExit() } }
        func workerLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(try GridFaultCLITests.waitUntil(30) { try completed(repo).contains("tasks/completed/disk1-t1.json") }, "\(workerLog())")

        // Fill the home's filesystem to 8 MiB short of full: below the 16 MiB floor.
        let free = (try FileManager.default.attributesOfFileSystem(forPath: mount)[.systemFreeSize] as? NSNumber)?.int64Value ?? 0
        #expect(free > 24 << 20, "the home fits in 64 MiB with room to fill: \(free)")
        let filler = mount + "/filler"
        #expect(try ProcessRunner.run("/usr/bin/fallocate", ["-l", "\(free - (8 << 20))", filler]).status == 0)
        #expect(GridFaultCLITests.waitUntil(15) {
            (node(submitter, url, "disk1")?["reason"] as? String ?? "").hasPrefix("disk almost full")
        }, "\(String(describing: node(submitter, url, "disk1")))\n\(workerLog())")
        let record = node(submitter, url, "disk1") ?? [:]
        #expect(record["health"] as? String == "unhealthy", "\(record)")
        #expect(!(record["reason"] as? String ?? "").contains(mount), "the published reason names no host path")
        #expect(workerLog().contains("self-check failed"), "\(workerLog())")

        // Unhealthy: a task submitted now waits in the queue, unclaimed.
        try GridFixture.taskFile(tasks, "t2", "echo two")
        #expect(try submitter.dgrid("submit", "--repo", url, tasks + "/t2.json").status == 0)
        Thread.sleep(forTimeInterval: 3)
        #expect(try !completed(repo).contains("tasks/completed/disk1-t2.json"))
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty, "claimed while the disk was full")
        #expect(try GridFixture.mainFiles(repo).contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix("/t2.json") || $0 == "tasks/queue/t2.json" })

        // Space returns: the worker claims again and runs it; nothing was lost or failed.
        try FileManager.default.removeItem(atPath: filler)
        #expect(try GridFaultCLITests.waitUntil(30) { try completed(repo).contains("tasks/completed/disk1-t2.json") }, "\(workerLog())")
        #expect(GridFaultCLITests.waitUntil(10) { node(submitter, url, "disk1")?["health"] as? String == "healthy" })
        #expect(try submitter.dgrid("result", "--repo", url, "t2").stdout == "two\n")
        let files = try GridFixture.mainFiles(repo)
        #expect(!files.contains { ($0.hasPrefix("tasks/failed/") || $0.hasPrefix("tasks/rejected/")) && !$0.hasSuffix(".gitkeep") }, "\(files)")
        #expect(workerLog().contains("self-check passed"), "\(workerLog())")
    }

    @Test func aGitServerThatGoesAwayOpensTheCircuitAndWorkResumesWhenItIsBack() throws {
        let base = try TempDir.make(prefix: "dgrid-circuit").path
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", base + "/grid.git"]).status == 0)
        let daemon = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        let port = try FreePort.loopback()
        #expect(try ProcessRunner.run(daemon, ["start", base, "\(port)"]).status == 0)
        defer { _ = try? ProcessRunner.run(daemon, ["stop", base]) }
        let url = "git://127.0.0.1:\(port)/grid.git"
        let submitter = try GridFixture.workerHome(), home = try GridFixture.workerHome()
        #expect(try submitter.dgrid("init", "--repo", url).status == 0)
        try GridFixture.taskFile(base, "c1", "echo one")
        #expect(try submitter.dgrid("submit", "--repo", url, base + "/c1.json").status == 0)
        let log = base + "/worker.log"
        // Two slots polling every 0.1-0.2 s and a beat every 0.5 s: ~12 connections a second without a breaker.
        let metricsPort = try FreePort.loopback()
        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "cb1", "--metrics-listen", "127.0.0.1:\(metricsPort)"],
                                                  home: home, log: log, environment: [
            "DGRID_SLOTS": "2", "DGRID_POLL_SECONDS": "0.1", "DGRID_POLL_CEILING_SECONDS": "0.2", "DGRID_HEARTBEAT_SECONDS": "0.5",
            "DGRID_LEASE_SECONDS": "30", "DGRID_FOLD_INTERVAL_SECONDS": "0", "DGRID_CIRCUIT_FAILURES": "3",
            "DGRID_CIRCUIT_CEILING_SECONDS": "2",
        ])
        defer { if worker.isRunning { worker.terminate(); worker.waitUntilExit() } }
        func workerLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(try GridFaultCLITests.waitUntil(30) { try completed(base + "/grid.git").contains("tasks/completed/cb1-c1.json") }, "\(workerLog())")

        // The server goes away; in its place a listener that counts connections and closes each at once.
        #expect(try ProcessRunner.run(daemon, ["stop", base]).status == 0)
        let counter = base + "/connections"
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        listener.arguments = ["-c", """
            import socket, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
            n = 0
            while True:
                c, _ = s.accept(); n += 1; c.close()
                open(sys.argv[2], "w").write(str(n))
            """, "\(port)", counter]
        try listener.run()
        // SIGKILL: the test process blocks SIGTERM, and a child inherits the blocked mask.
        defer { if listener.isRunning { kill(listener.processIdentifier, SIGKILL); listener.waitUntilExit() } }
        Thread.sleep(forTimeInterval: 8)
        let connections = Int((try? String(contentsOfFile: counter, encoding: .utf8)) ?? "0") ?? 0
        #expect(connections >= 3, "the worker kept trying: \(connections)")
        #expect(connections <= 20, "an open circuit lets a probe through every ~2 s, not every poll: \(connections) connections in 8 s")
        #expect(workerLog().contains("circuit to the Git server is open"), "\(workerLog())")
        // The metrics say so too: the closed state is 0 (open or half-open is 1).
        let away = try OperationsFixture.scrape(metricsPort)
        #expect(away.contains("dgrid_worker_circuit_state{backend=\"git\",state=\"closed\"} 0.0"), "\(away)")

        // The server returns: the next probe closes the circuit and a new task runs.
        kill(listener.processIdentifier, SIGKILL); listener.waitUntilExit()
        #expect(try ProcessRunner.run(daemon, ["start", base, "\(port)"]).status == 0)
        try GridFixture.taskFile(base, "c2", "echo two")
        #expect(try submitter.dgrid("submit", "--repo", url, base + "/c2.json").status == 0)
        #expect(try GridFaultCLITests.waitUntil(30) { try completed(base + "/grid.git").contains("tasks/completed/cb1-c2.json") }, "\(workerLog())")
        #expect(GridFaultCLITests.waitUntil(10) {
            let record = node(submitter, url, "cb1")
            return record?["git_circuit"] as? String == "closed" && record?["health"] as? String == "healthy"
        }, "\(String(describing: node(submitter, url, "cb1")))")
        #expect(try submitter.dgrid("result", "--repo", url, "c2").stdout == "two\n")
        #expect(try OperationsFixture.scrape(metricsPort).contains("dgrid_worker_circuit_state{backend=\"git\",state=\"closed\"} 1.0"))
    }

    @Test func aWorkerRestartedAfterACrashReleasesItsClaimsAtOnceAndAFoldMarksSilentNodesOffline() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome(), other = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-restart").path
        try GridFixture.taskFile(tasks, "r1", "sleep 4; echo done", timeout: 60)
        #expect(try home.dgrid("submit", "--repo", url, tasks + "/r1.json").status == 0)
        // A long lease: waiting for it would take a minute.
        let environment = ["DGRID_LEASE_SECONDS": "60", "DGRID_HEARTBEAT_SECONDS": "0.5", "DGRID_POLL_SECONDS": "0.2",
                           "DGRID_FOLD_INTERVAL_SECONDS": "0"]
        let first = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "rw"], home: home, log: tasks + "/first.log", environment: environment)
        #expect(try GridFaultCLITests.waitUntil(20) { try !GridFixture.refs(repo, "refs/dgrid/claims").isEmpty })
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        // Restarted (as systemd's Restart=on-failure would): the claim goes back at once and the task runs.
        let started = Date()
        let second = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "rw"], home: home, log: tasks + "/second.log", environment: environment)
        defer { if second.isRunning { kill(second.processIdentifier, SIGKILL); second.waitUntilExit() } }
        let log = { (try? String(contentsOfFile: tasks + "/second.log", encoding: .utf8)) ?? "" }
        #expect(try GridFaultCLITests.waitUntil(30) { try completed(repo).contains("tasks/completed/rw-r1.json") }, "\(log())")
        #expect(Date().timeIntervalSince(started) < 30, "it waited for the lease")
        #expect(log().contains("released a claim of this node's earlier process"), "\(log())")
        let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "tasks/completed/rw-r1.json.log").utf8)) as? [String: Any]
        let earlier = record?["previous_attempts"] as? [[String: Any]] ?? []
        #expect(earlier.count == 1 && earlier.first?["end"] as? String == "worker_restarted" && earlier.first?["node_id"] as? String == "rw", "\(earlier)")

        // Killed again, it beats no more: the next fold, by another worker, marks it offline on main.
        kill(second.processIdentifier, SIGKILL)
        second.waitUntilExit()
        Thread.sleep(forTimeInterval: 2)  // three of its 0.5 s intervals
        #expect(try other.dgrid(["worker", "--repo", url, "--node-id", "folder", "--once"]).status == 0)
        let nodeFile = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "nodes/rw.json").utf8)) as? [String: Any]
        #expect(nodeFile?["status"] as? String == "offline", "\(String(describing: nodeFile))")
        let folder = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "nodes/folder.json").utf8)) as? [String: Any]
        #expect(folder?["status"] as? String == "stopped", "a node that said it stopped is not offline: \(String(describing: folder))")
    }
}
