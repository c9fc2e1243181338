import Foundation
import Testing
import TestSupport

/// The slot watchdog (docs/ARCHITECTURE.md §12, "Slot watchdog"): a sandbox
/// that outlives its timeout because something on the host froze it — here a
/// cgroup v1 freezer group the test makes, as a broken host tool would, which
/// no kill reaches — is killed again after the grace, and when that does not
/// end it either its slot is replaced: the claim goes back to the grid as a
/// host fault, the worker runs on with a new slot thread, and what the stuck run
/// brings back once the host lets go is dropped. Nothing is lost, the task's
/// verdict is its own (its second run times out), and the worker still stops.
@Suite(.system, .serialized) struct SlotWatchdogCLITests {
    /// Host pids of every process in the pid namespace of the process running `sleep <marker>`.
    private func sandboxPids(marker: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        func commandLine(_ pid: String) -> String {
            ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        }
        guard let sleeper = entries.first(where: { Int($0) != nil && commandLine($0) == "sleep \(marker)" }),
              let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(sleeper)/ns/pid") else { return [] }
        return entries.compactMap { entry in
            guard let pid = pid_t(entry), (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/ns/pid")) == namespace else { return nil }
            return pid
        }
    }

    @Test func aSandboxNoKillEndsIsKilledAgainItsSlotReplacedAndItsTaskGivenBack() throws {
        let freezer = "/sys/fs/cgroup/freezer"
        try #require(FileManager.default.fileExists(atPath: freezer + "/freezer.state") || FileManager.default.fileExists(atPath: freezer + "/tasks"),
                     "this test needs the cgroup v1 freezer at \(freezer)")
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-watchdog").path
        // 73: no other suite sleeps that long. Timeout 2 s: the supervisor kills at 2 s.
        try GridFixture.taskFile(tasks, "stuck", "sleep 73", timeout: 2)
        #expect(try home.dgrid("submit", "--repo", url, tasks + "/stuck.json").status == 0)

        let log = tasks + "/worker.log"
        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "wd1"], home: home, log: log, environment: [
            "DGRID_SLOTS": "1", "DGRID_POLL_SECONDS": "0.2", "DGRID_POLL_CEILING_SECONDS": "0.5", "DGRID_HEARTBEAT_SECONDS": "0.5",
            "DGRID_LEASE_SECONDS": "60", "DGRID_FOLD_INTERVAL_SECONDS": "0", "DGRID_SLOT_WATCHDOG_SECONDS": "2",
        ])
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() } }
        func workerLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        // The task runs: the host freezes every process of its sandbox in a group of its own.
        var pids: [pid_t] = []
        #expect(GridFaultCLITests.waitUntil(20) { pids = sandboxPids(marker: "73"); return pids.count >= 2 }, "\(workerLog())")
        let group = freezer + "/dgrid-test-stuck-\(getpid())"
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: false)
        defer {
            try? "THAWED".write(toFile: group + "/freezer.state", atomically: false, encoding: .utf8)
            _ = GridFaultCLITests.waitUntil(10) { ((try? String(contentsOfFile: group + "/tasks", encoding: .utf8)) ?? "").isEmpty }
            rmdir(group)
        }
        for pid in pids { try "\(pid)".write(toFile: group + "/cgroup.procs", atomically: false, encoding: .utf8) }
        try "FROZEN".write(toFile: group + "/freezer.state", atomically: false, encoding: .utf8)

        // Timeout at 2 s (the supervisor's kill waits for a thaw), the watchdog's kill at 4 s, the slot replaced at 6 s.
        #expect(GridFaultCLITests.waitUntil(30) { workerLog().contains("the slot watchdog kills it") }, "\(workerLog())")
        #expect(GridFaultCLITests.waitUntil(30) { workerLog().contains("still running after a kill by the slot watchdog") },
                "\(workerLog())")
        // The new slot runs the task again once the worker's sandbox check passes: unfrozen, it times out as a task does.
        let path = "tasks/failed/wd1-stuck.json.log"
        #expect(try GridFaultCLITests.waitUntil(60) { try GridFixture.mainFiles(repo).contains(path) }, "\(workerLog())")
        let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
        #expect(record["timed_out"] as? Bool == true && record["attempt"] as? Int == 2, "\(record)")
        let earlier = record["previous_attempts"] as? [[String: Any]] ?? []
        #expect(earlier.count == 1 && earlier.first?["end"] as? String == "host_fault"
                && (earlier.first?["reason"] as? String ?? "").contains("could not be killed"), "\(earlier)")
        // The first run's processes are still frozen where the host put them.
        #expect(try String(contentsOfFile: group + "/tasks", encoding: .utf8).split(separator: "\n").count == pids.count)
        let overdue = try GridQuotaCLITests.events(home).filter { $0["event"] as? String == "sandbox_overdue" }
        #expect(overdue.count == 2, "the kill and the replacement: \(overdue)")

        // The host lets go: the stuck run ends, its result is dropped, the record stays the second run's.
        try "THAWED".write(toFile: group + "/freezer.state", atomically: false, encoding: .utf8)
        #expect(GridFaultCLITests.waitUntil(20) { workerLog().contains("its result is dropped") }, "\(workerLog())")
        #expect(sandboxPids(marker: "73").isEmpty)
        let again = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
        #expect(again["attempt"] as? Int == 2, "\(again)")
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty)

        // Its slot accounting is whole: the worker stops when asked.
        kill(worker.processIdentifier, SIGINT)
        #expect(GridFaultCLITests.waitUntil(30) { !worker.isRunning }, "the worker did not stop: \(workerLog())")
        #expect(worker.terminationStatus == 0, "\(workerLog())")
    }
}
