import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// What this host offers, probed once with the real proc files.
enum CgroupHost {
    static let isRoot = geteuid() == 0
    static let plan = Result { () throws(CgroupError) -> CgroupPlan in
        try Cgroups.plan(mountinfoPath: "/proc/self/mountinfo", cgroupPath: "/proc/self/cgroup", hostRoot: "", fs: KernelCgroupFilesystem())
    }

    static var v1OwnGroups: [String: String]? {
        guard isRoot, case .success(.v1(let groups)) = plan else { return nil }
        return groups
    }

    static var v2OwnGroup: String? {
        guard isRoot, case .success(.v2(let group, _)) = plan else { return nil }
        return group
    }

    /// Why the full v2 test cannot run here; nil when it can.
    static var v2SkipReason: String? {
        if !isRoot { return "needs root" }
        switch plan {
        case .success(.v2): return nil
        case .success(.v1): return "the probe chose v1: no writable cgroup2 group here offers memory, cpu and pids (hybrid host)"
        case .failure(let error): return "no usable cgroup hierarchy: \(error)"
        }
    }

    /// Our group in a mounted, writable cgroup2, with or without controllers
    /// (on this host: the empty /sys/fs/cgroup/unified of a hybrid setup).
    static let unifiedOwnGroup: String? = {
        let fs = KernelCgroupFilesystem()
        guard isRoot, let mountinfo = fs.read("/proc/self/mountinfo"), let cgroup = fs.read("/proc/self/cgroup"),
              let membership = CgroupProbe.parseMemberships(cgroup).first(where: { $0.hierarchyID == 0 }) else { return nil }
        for mount in CgroupProbe.parseMountinfo(mountinfo) where mount.version == .v2 {
            if let dir = CgroupProbe.directory(of: membership.path, in: mount), fs.isWritable(dir) { return dir }
        }
        return nil
    }()

    /// Makes `<group>/cgtest-<pid>-<tag>` in each hierarchy: a private own-group, so
    /// these tests never meet the real `dgrid/*` of a concurrent run (or its removeStale).
    static func privateGroups(under groups: [String: String], tag: String) -> [String: String] {
        let mine = groups.mapValues { $0 + "/cgtest-\(getpid())-\(tag)" }
        for dir in Set(mine.values) { _ = mkdir(dir, 0o755) }
        return mine
    }

    static func removePrivateGroups(_ groups: [String: String]) {
        for dir in Set(groups.values) {
            _ = rmdir(dir + "/dgrid")
            _ = rmdir(dir)
        }
    }

    static func read(_ path: String) -> String? { KernelCgroupFilesystem().read(path) }
    static func members(_ dir: String) -> [pid_t] { CgroupText.pids(read(dir + "/cgroup.procs")) }
}

/// A real child process: `/bin/sh -c script`, blocked reading stdin until `release()`
/// so it is in its group before it does anything.
final class GatedChild {
    let process = Process()
    private let input = Pipe()

    init(_ script: String) throws {
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "read go; " + script]
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }

    func release() {
        input.fileHandleForWriting.write(Data("go\n".utf8))
    }

    /// Waits until the shell has exec'd `command` (its memory is then charged to the new group).
    func execed(_ command: String, within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if CgroupHost.read("/proc/\(pid)/comm") == command + "\n" { return true }
            usleep(2_000)
        }
        return false
    }

    /// True once it exits within `seconds`.
    func exited(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        return !process.isRunning
    }

    var killedBySIGKILL: Bool {
        !process.isRunning && process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Real kernel, this host's v1 hierarchies. Serialized: each test owns private
/// groups, but the OOM and fork tests are heavy enough without company.
@Suite(.system, .serialized, .enabled(if: CgroupHost.v1OwnGroups != nil, "needs root and a cgroup v1 hierarchy (the probe's choice on hybrid hosts)"))
struct CgroupV1KernelTests {
    @Test func probeFindsOurOwnGroups() throws {
        let groups = try #require(CgroupHost.v1OwnGroups)
        #expect(groups["memory"] != nil)
        for (controller, dir) in groups {
            #expect(CgroupText.hasProcesses(CgroupHost.read(dir + "/cgroup.procs")), "\(controller): \(dir) should hold this test process")
            #expect(CgroupHost.read(dir + "/cgroup.procs")?.split(separator: "\n").contains(Substring("\(getpid())")) == true, "\(controller): \(dir)")
        }
    }

    @Test func v1LimitsAddKillRemove() throws {
        let own = CgroupHost.privateGroups(under: try #require(CgroupHost.v1OwnGroups), tag: "limits")
        defer { CgroupHost.removePrivateGroups(own) }
        let driver = try CgroupV1Driver(ownGroups: own)
        let limits = ResourceLimits(memoryBytes: 64 << 20, cpus: try CPUQuota(cpus: 0.5), pids: 16)
        let group = try driver.create(name: "limits", limits: limits)
        // The hierarchies these limits need (and what is co-mounted with them).
        let dirs = CgroupV1Driver.hierarchiesFor(limits, in: own).mapValues { $0 + "/dgrid/limits" }
        #expect(Set(dirs.keys).isSuperset(of: ["memory", "cpu", "pids"].filter { own[$0] != nil }) && dirs["freezer"] == nil, "\(dirs)")

        // The kernel's view of what we wrote.
        if let memory = dirs["memory"] {
            #expect(CgroupHost.read(memory + "/memory.limit_in_bytes") == "67108864\n")
            if FileManager.default.fileExists(atPath: memory + "/memory.memsw.limit_in_bytes") {
                #expect(CgroupHost.read(memory + "/memory.memsw.limit_in_bytes") == "67108864\n")
            }
            #expect(CgroupHost.read(memory + "/memory.swappiness") == "0\n")
        }
        if let cpu = dirs["cpu"] {
            #expect(CgroupHost.read(cpu + "/cpu.cfs_period_us") == "100000\n")
            #expect(CgroupHost.read(cpu + "/cpu.cfs_quota_us") == "50000\n")
        }
        if let pids = dirs["pids"] {
            #expect(CgroupHost.read(pids + "/pids.max") == "16\n")
        }

        let child = try GatedChild("exec /bin/sleep 30")
        try group.add(pid: child.pid)
        for dir in Set(dirs.values) {
            #expect(CgroupHost.members(dir) == [child.pid], "\(dir)")
        }
        let procCgroup = CgroupHost.read("/proc/\(child.pid)/cgroup") ?? ""
        #expect(procCgroup.contains("memory:") && procCgroup.contains("/cgtest-\(getpid())-limits/dgrid/limits\n"))
        child.release()
        #expect(child.execed("sleep", within: 5))

        group.killAll()
        #expect(child.exited(within: 5))
        #expect(child.killedBySIGKILL)
        for dir in Set(dirs.values) { #expect(CgroupHost.members(dir).isEmpty, "\(dir)") }

        let stats = group.stats()
        #expect((stats.cpuNanoseconds != nil) == (dirs["cpuacct"] != nil), "cpuacct read where joined")
        #expect((stats.peakMemoryBytes ?? 0) > 0)
        #expect(!stats.oomKilled)
        #expect(!stats.pidsLimitHit)

        try group.remove()
        for dir in Set(dirs.values) { #expect(!FileManager.default.fileExists(atPath: dir), "\(dir)") }
    }

    @Test func pidsLimitRefusesForksAndIsReported() throws {
        let own = CgroupHost.privateGroups(under: try #require(CgroupHost.v1OwnGroups), tag: "pids")
        defer { CgroupHost.removePrivateGroups(own) }
        let driver = try CgroupV1Driver(ownGroups: own)
        let group = try driver.create(name: "pids", limits: ResourceLimits(pids: 3))
        defer { try? group.remove() }

        let child = try GatedChild("for i in 1 2 3 4 5 6; do /bin/sleep 30 & done; wait")
        try group.add(pid: child.pid)
        child.release()
        let deadline = Date().addingTimeInterval(5)
        while !group.stats().pidsLimitHit && Date() < deadline { usleep(10_000) }
        #expect(group.stats().pidsLimitHit)
        #expect(CgroupHost.members(own["pids"].map { $0 + "/dgrid/pids" } ?? "").count <= 3)
        group.killAll()
        #expect(child.exited(within: 5))
    }

    @Test func memoryLimitOOMKillsAndIsReported() throws {
        let own = CgroupHost.privateGroups(under: try #require(CgroupHost.v1OwnGroups), tag: "oom")
        defer { CgroupHost.removePrivateGroups(own) }
        let driver = try CgroupV1Driver(ownGroups: own)
        let group = try driver.create(name: "oom", limits: ResourceLimits(memoryBytes: 32 << 20))
        defer { try? group.remove() }

        // The shell holds a 200 MB command substitution: far past 32 MiB, no swap to hide in.
        let child = try GatedChild("x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo ${#x}")
        try group.add(pid: child.pid)
        child.release()
        #expect(child.exited(within: 20))
        #expect(child.killedBySIGKILL)
        let stats = group.stats()
        #expect(stats.oomKilled)
        #expect((stats.peakMemoryBytes ?? 0) >= 30 << 20)
    }

    @Test func removeStaleCleansALeftoverGroup() throws {
        let own = CgroupHost.privateGroups(under: try #require(CgroupHost.v1OwnGroups), tag: "stale")
        defer { CgroupHost.removePrivateGroups(own) }
        // A "crashed" run: a group with a live task, and one the new run still uses.
        let crashed = try CgroupV1Driver(ownGroups: own)
        let stale = try crashed.create(name: "stale-test", limits: ResourceLimits(pids: 8))
        let kept = try crashed.create(name: "keep-me", limits: ResourceLimits(pids: 8))
        let child = try GatedChild("exec /bin/sleep 30")
        try stale.add(pid: child.pid)

        let restarted = try CgroupV1Driver(ownGroups: own)
        #expect(restarted.removeStale(keep: ["keep-me"]) == ["stale-test"])
        #expect(child.exited(within: 5))
        #expect(child.killedBySIGKILL)
        for dir in Set(CgroupV1Driver.hierarchiesFor(ResourceLimits(pids: 8), in: own).values) {
            #expect(!FileManager.default.fileExists(atPath: dir + "/dgrid/stale-test"), "\(dir)")
            #expect(FileManager.default.fileExists(atPath: dir + "/dgrid/keep-me"), "\(dir)")
        }
        try kept.remove()
        #expect(restarted.groupNames().isEmpty)
    }
}

/// Real kernel, cgroup v2.
@Suite(.system, .serialized) struct CgroupV2KernelTests {
    // Runs only where the probe picks v2 (a writable cgroup2 group offering memory,
    // cpu and pids). On a hybrid host like this one the probe picks v1, and the
    // reason shows up in the test report as the skip comment.
    @Test(.enabled(if: CgroupHost.v2SkipReason == nil, Comment(rawValue: CgroupHost.v2SkipReason ?? "")))
    func v2LimitsAddKillRemove() throws {
        let own = try #require(CgroupHost.v2OwnGroup)
        let driver = try CgroupV2Driver(ownGroup: own)
        let name = "cgtest-\(getpid())-v2"
        let group = try driver.create(name: name, limits: ResourceLimits(memoryBytes: 64 << 20, cpus: try CPUQuota(cpus: 0.5), pids: 16))
        let dir = own + "/dgrid/" + name
        defer { try? group.remove() }
        #expect(CgroupHost.read(dir + "/memory.max") == "67108864\n")
        #expect(CgroupHost.read(dir + "/cpu.max") == "50000 100000\n")
        #expect(CgroupHost.read(dir + "/pids.max") == "16\n")
        #expect(CgroupHost.read(dir + "/memory.oom.group") == "1\n")

        let child = try GatedChild("exec /bin/sleep 30")
        try group.add(pid: child.pid)
        #expect(CgroupHost.members(dir) == [child.pid])
        group.killAll()
        #expect(child.exited(within: 5))
        #expect(child.killedBySIGKILL)
        try group.remove()
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    // What does work on an empty cgroup2 (hybrid hosts): groups, membership,
    // cgroup.kill and removal, with no controllers and so no limits.
    @Test(.enabled(if: CgroupHost.unifiedOwnGroup != nil, "needs root and a writable cgroup2 mount"))
    func groupWithoutControllersOnTheUnifiedMount() throws {
        let own = CgroupHost.privateGroups(under: ["unified": try #require(CgroupHost.unifiedOwnGroup)], tag: "unified")
        defer { CgroupHost.removePrivateGroups(own) }
        let ownGroup = try #require(own["unified"])
        let driver = try CgroupV2Driver(ownGroup: ownGroup)
        let offered = CgroupText.words(CgroupHost.read(ownGroup + "/cgroup.controllers"))
        #expect(driver.controllers == offered.intersection(["cpu", "memory", "pids"]))
        if !driver.controllers.contains("memory") {
            #expect(throws: CgroupError.missingController("memory")) {
                _ = try driver.create(name: "limited", limits: ResourceLimits(memoryBytes: 1 << 20))
            }
        }

        let group = try driver.create(name: "plain", limits: ResourceLimits())
        let dir = ownGroup + "/dgrid/plain"
        let child = try GatedChild("exec /bin/sleep 30")
        try group.add(pid: child.pid)
        #expect(CgroupHost.members(dir) == [child.pid])
        #expect(CgroupHost.read(dir + "/cgroup.events")?.contains("populated 1") == true)
        #expect(CgroupHost.read("/proc/\(child.pid)/cgroup")?.contains("/cgtest-\(getpid())-unified/dgrid/plain\n") == true)
        child.release()

        group.killAll()
        #expect(child.exited(within: 5))
        #expect(child.killedBySIGKILL)
        #expect(group.stats().cpuNanoseconds != nil, "cpu.stat is core on v2, no controller needed")
        try group.remove()
        #expect(!FileManager.default.fileExists(atPath: dir))
    }
}
