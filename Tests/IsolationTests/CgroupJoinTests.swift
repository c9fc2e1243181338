import Glibc
import Synchronization
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// On cgroup v1 a sandbox's pid 1 moves itself into its groups (a "0" written
/// to each hierarchy's `tasks` file) instead of the worker writing its pid to
/// cgroup.procs: that write takes the kernel's global threadgroup lock, whose
/// write side waits for an RCU grace period — ~10 ms of every start on this
/// host (docs/ARCHITECTURE.md §3). Real kernel, real groups; the driver is the
/// real v1 driver, wrapped only to record what the runner asked of it.
@Suite(.system, .serialized, .enabled(if: CgroupHost.v1OwnGroups != nil, "needs root and a cgroup v1 hierarchy (the probe's choice on hybrid hosts)"))
struct CgroupJoinTests {
    @Test func pid1JoinsItsV1GroupsItselfAndTheTaskRunsThere() throws {
        let own = CgroupHost.privateGroups(under: try #require(CgroupHost.v1OwnGroups), tag: "join")
        defer { CgroupHost.removePrivateGroups(own) }
        let recorder = RecordingDriver(try CgroupV1Driver(ownGroups: own))
        let runner = SandboxRunner(cgroups: recorder)
        // Enough work that the groups' own counters cannot stay at zero.
        var spec = try Fixture.shell("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done")
        spec.limits = ResourceLimits(memoryBytes: 64 << 20, pids: 64)

        let outcome = try runner.run(spec)

        #expect(outcome.exitCode == 0)
        #expect(String(decoding: outcome.stdout.bytes, as: UTF8.self) == "done\n")
        #expect(recorder.addedPids.isEmpty, "the worker wrote a pid to cgroup.procs: \(recorder.addedPids)")
        let stats = try #require(recorder.lastStats)
        // cpuacct is joined only where co-mounted with a limited controller.
        if CgroupV1Driver.hierarchiesFor(spec.limits, in: own)["cpuacct"] != nil {
            #expect((stats.cpuNanoseconds ?? 0) > 0, "cpuacct saw none of the task's CPU time: it ran outside its group")
        }
        #expect((stats.peakMemoryBytes ?? 0) > 0, "memory saw none of the task's pages: it ran outside its group")
        #expect((outcome.cpuMs ?? 0) > 0, "the task's CPU time, from the group or rusage")

        for dir in Set(own.values) {
            #expect(KernelCgroupFilesystem().subdirectories(of: dir + "/dgrid").isEmpty, "the run's group is left in \(dir)")
        }
    }
}

/// The real driver, recording `add(pid:)` calls and the stats the runner read.
private final class RecordingDriver: CgroupDriver, @unchecked Sendable {
    private let inner: CgroupDriver
    private let log = Mutex<(adds: [pid_t], stats: CgroupStats?)>(([], nil))

    init(_ inner: CgroupDriver) { self.inner = inner }

    var version: CgroupVersion { inner.version }
    var addedPids: [pid_t] { log.withLock { $0.adds } }
    var lastStats: CgroupStats? { log.withLock { $0.stats } }

    func create(name: String, limits: ResourceLimits) throws(CgroupError) -> SandboxCgroup {
        RecordingGroup(inner: try inner.create(name: name, limits: limits), driver: self)
    }

    func removeStale(keeping keep: (String) -> Bool) -> [String] { inner.removeStale(keeping: keep) }

    fileprivate func recordAdd(_ pid: pid_t) { log.withLock { $0.adds.append(pid) } }
    fileprivate func recordStats(_ stats: CgroupStats) { log.withLock { $0.stats = stats } }
}

private struct RecordingGroup: SandboxCgroup, @unchecked Sendable {
    let inner: SandboxCgroup
    let driver: RecordingDriver

    func add(pid: pid_t) throws(CgroupError) {
        driver.recordAdd(pid)
        try inner.add(pid: pid)
    }

    func openJoinDescriptors() throws(CgroupError) -> [Int32] { try inner.openJoinDescriptors() }

    func stats() -> CgroupStats {
        let stats = inner.stats()
        driver.recordStats(stats)
        return stats
    }

    func killAll() { inner.killAll() }
    func remove() throws(CgroupError) { try inner.remove() }
}
