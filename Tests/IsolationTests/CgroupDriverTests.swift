import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// The exact files and values each driver writes, on a fake tree (no kernel involved).
@Suite(.unit) struct CgroupDriverTests {
    static let limits = ResourceLimits(memoryBytes: 64 << 20, cpus: try? CPUQuota(cpus: 0.5), pids: 16)
    /// Never a real process here: the fake tree swallows every signal.
    static let fakePid: pid_t = 999_991

    // MARK: v1

    /// cpu,cpuacct co-mounted (the common systemd layout), plus memory, pids and freezer.
    private func v1Tree() throws -> (FakeCgroupTree, CgroupV1Driver) {
        let tree = try FakeCgroupTree(templates: [
            "memory": CgroupTemplates.v1Memory,
            "cpu,cpuacct": CgroupTemplates.v1CPU.merging(CgroupTemplates.v1CPUAcct) { a, _ in a },
            "pids": CgroupTemplates.v1Pids,
            "freezer": CgroupTemplates.v1Freezer,
        ])
        for hierarchy in ["memory", "cpu,cpuacct", "pids", "freezer"] { try tree.makeGroups(hierarchy + "/user.slice") }
        let coMounted = tree.path("cpu,cpuacct/user.slice")
        let driver = try CgroupV1Driver(ownGroups: [
            "memory": tree.path("memory/user.slice"), "cpu": coMounted, "cpuacct": coMounted,
            "pids": tree.path("pids/user.slice"), "freezer": tree.path("freezer/user.slice"),
        ], fs: tree)
        return (tree, driver)
    }

    @Test func v1InitMakesDgridOncePerHierarchy() throws {
        let (tree, _) = try v1Tree()
        for hierarchy in ["memory", "cpu,cpuacct", "pids", "freezer"] {
            #expect(tree.exists(tree.path(hierarchy + "/user.slice/dgrid")))
        }
        #expect(tree.writes.isEmpty, "making dgrid/ needs no control file writes on v1")
    }

    @Test func v1CreateWritesExactLimits() throws {
        let (tree, driver) = try v1Tree()
        _ = try driver.create(name: "t1", limits: Self.limits)
        #expect(tree.writes.map(\.description) == [
            "memory/user.slice/dgrid/t1/memory.limit_in_bytes <- 67108864",
            "memory/user.slice/dgrid/t1/memory.memsw.limit_in_bytes <- 67108864",
            "memory/user.slice/dgrid/t1/memory.swappiness <- 0",
            "cpu,cpuacct/user.slice/dgrid/t1/cpu.cfs_period_us <- 100000",
            "cpu,cpuacct/user.slice/dgrid/t1/cpu.cfs_quota_us <- 50000",
            "pids/user.slice/dgrid/t1/pids.max <- 16",
        ])
        #expect(tree.contents("memory/user.slice/dgrid/t1/memory.oom_control") == CgroupTemplates.v1Memory["memory.oom_control"], "the kernel OOM killer stays on")
    }

    @Test func v1WithoutMemswSetsOnlyTheLimit() throws {
        let (tree, driver) = try v1Tree()
        // Pre-made group without swap accounting; create reuses an existing directory.
        try tree.makeGroups("memory/user.slice/dgrid/t2")
        try unlinkFile(tree.path("memory/user.slice/dgrid/t2/memory.memsw.limit_in_bytes"))
        _ = try driver.create(name: "t2", limits: ResourceLimits(memoryBytes: 1 << 20))
        #expect(tree.writes.map(\.description) == [
            "memory/user.slice/dgrid/t2/memory.limit_in_bytes <- 1048576",
            "memory/user.slice/dgrid/t2/memory.swappiness <- 0",
        ])
    }

    @Test func v1RaisesMemswFirstWhenTheLimitWouldExceedIt() throws {
        let (tree, driver) = try v1Tree()
        tree.failNextWrite(to: "memory/user.slice/dgrid/t3/memory.limit_in_bytes", errno: EINVAL)
        _ = try driver.create(name: "t3", limits: ResourceLimits(memoryBytes: 1 << 30))
        #expect(tree.writes.map(\.description) == [
            "memory/user.slice/dgrid/t3/memory.limit_in_bytes <- 1073741824",
            "memory/user.slice/dgrid/t3/memory.memsw.limit_in_bytes <- 1073741824",
            "memory/user.slice/dgrid/t3/memory.limit_in_bytes <- 1073741824",
            "memory/user.slice/dgrid/t3/memory.swappiness <- 0",
        ])
    }

    /// Each v1 hierarchy is a mkdir and an rmdir on every start: a group joins
    /// only those its limits need (and what is co-mounted with them), never
    /// the freezer (fails with every mounted hierarchy joined).
    @Test func v1CreateJoinsOnlyTheHierarchiesItsLimitsNeed() throws {
        let cases: [(ResourceLimits, [String])] = [
            (ResourceLimits(memoryBytes: 1 << 20), ["memory"]),
            (ResourceLimits(pids: 8), ["pids"]),
            (ResourceLimits(cpus: try CPUQuota(parsing: "0.5")), ["cpu,cpuacct"]),
            (Self.limits, ["cpu,cpuacct", "memory", "pids"]),
        ]
        for (index, (limits, expected)) in cases.enumerated() {
            let (tree, driver) = try v1Tree()
            let name = "t\(index)"
            let group = try driver.create(name: name, limits: limits)
            for hierarchy in ["memory", "cpu,cpuacct", "pids", "freezer"] {
                #expect(tree.exists(tree.path(hierarchy + "/user.slice/dgrid/" + name)) == expected.contains(hierarchy),
                        "\(limits): \(hierarchy)")
            }
            try group.remove()
        }
    }

    @Test func v1AddWritesThePidOncePerHierarchy() throws {
        let (tree, driver) = try v1Tree()
        let group = try driver.create(name: "t1", limits: Self.limits)
        tree.clearLog()
        try group.add(pid: Self.fakePid)
        #expect(tree.writes.map(\.description) == [
            "cpu,cpuacct/user.slice/dgrid/t1/cgroup.procs <- 999991",
            "memory/user.slice/dgrid/t1/cgroup.procs <- 999991",
            "pids/user.slice/dgrid/t1/cgroup.procs <- 999991",
        ])
    }

    @Test func v1RemoveKillsAndDeletesEveryDirectory() throws {
        let (tree, driver) = try v1Tree()
        let group = try driver.create(name: "t1", limits: Self.limits)
        try group.add(pid: Self.fakePid)
        tree.clearLog()
        try group.remove()
        #expect(tree.writes.isEmpty, "no freezer joined, nothing to freeze")
        #expect(tree.kills == [Self.fakePid])
        for hierarchy in ["memory", "cpu,cpuacct", "pids", "freezer"] {
            #expect(!tree.exists(tree.path(hierarchy + "/user.slice/dgrid/t1")))
        }
        try group.remove() // idempotent
    }

    /// A group with a freezer (a stale one swept on start) is frozen before the
    /// kill, so its member list is final, and thawed for the kill to land.
    @Test func v1KillFreezesKillsThawsWhereAFreezerIsJoined() throws {
        let (tree, _) = try v1Tree()
        var directories: [String: String] = [:]
        for (controller, hierarchy) in [("memory", "memory"), ("freezer", "freezer")] {
            try tree.makeGroups(hierarchy + "/user.slice/dgrid/t1")
            directories[controller] = tree.path(hierarchy + "/user.slice/dgrid/t1")
        }
        let group = CgroupV1Group(directories: directories, fs: tree)
        try group.add(pid: Self.fakePid)
        tree.clearLog()
        try group.remove()
        #expect(tree.writes.map(\.description) == [
            "freezer/user.slice/dgrid/t1/freezer.state <- FROZEN",
            "freezer/user.slice/dgrid/t1/freezer.state <- THAWED",
        ])
        #expect(tree.kills == [Self.fakePid])
        #expect(!tree.exists(tree.path("freezer/user.slice/dgrid/t1")) && !tree.exists(tree.path("memory/user.slice/dgrid/t1")))
    }

    @Test func v1NeverTouchesReleaseAgentOrNotifyOnRelease() throws {
        let (tree, driver) = try v1Tree()
        let group = try driver.create(name: "t1", limits: Self.limits)
        try group.add(pid: Self.fakePid)
        _ = group.stats()
        try group.remove()
        _ = driver.removeStale(keep: [])
        #expect(!tree.writes.contains { $0.file.hasSuffix("release_agent") || $0.file.hasSuffix("notify_on_release") })
    }

    @Test func v1StatsReadTheKernelCounters() throws {
        let (tree, driver) = try v1Tree()
        let group = try driver.create(name: "t1", limits: Self.limits)
        tree.setFile("cpu,cpuacct/user.slice/dgrid/t1/cpuacct.usage", "123456789\n")
        tree.setFile("memory/user.slice/dgrid/t1/memory.max_usage_in_bytes", "1048576\n")
        tree.setFile("memory/user.slice/dgrid/t1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
        tree.setFile("pids/user.slice/dgrid/t1/pids.events", "max 3\n")
        #expect(group.stats() == CgroupStats(cpuNanoseconds: 123_456_789, peakMemoryBytes: 1_048_576, oomKilled: true, pidsLimitHit: true))
    }

    @Test func v1MissingControllersAreNamed() throws {
        let tree = try FakeCgroupTree(templates: ["cpu": CgroupTemplates.v1CPU])
        try tree.makeGroups("cpu")
        let driver = try CgroupV1Driver(ownGroups: ["cpu": tree.path("cpu")], fs: tree)
        #expect(throws: CgroupError.missingController("pids")) { _ = try driver.create(name: "x", limits: ResourceLimits(pids: 5)) }
        #expect(throws: CgroupError.missingController("memory")) { _ = try driver.create(name: "x", limits: ResourceLimits(memoryBytes: 5)) }
        #expect(!tree.exists(tree.path("cpu/dgrid/x")), "refused before anything was made")
    }

    @Test func v1RemoveStaleKillsAndRemovesAllButKept() throws {
        let (tree, driver) = try v1Tree()
        // A crash left "old" (with a task) and a half-made "partial" (memory only).
        let old = try driver.create(name: "old", limits: Self.limits)
        try old.add(pid: Self.fakePid)
        _ = try driver.create(name: "live", limits: Self.limits)
        try tree.makeGroups("memory/user.slice/dgrid/partial")

        let removed = driver.removeStale(keep: ["live"])
        #expect(removed == ["old", "partial"])
        #expect(tree.kills == [Self.fakePid])
        #expect(driver.groupNames() == ["live"])
    }

    @Test func v1FailedLimitLeavesNoDirectories() throws {
        let (tree, driver) = try v1Tree()
        tree.failNextWrite(to: "pids/user.slice/dgrid/t1/pids.max", errno: EINVAL)
        #expect(throws: CgroupError.write(path: tree.path("pids/user.slice/dgrid/t1/pids.max"), value: "16", errno: EINVAL)) {
            _ = try driver.create(name: "t1", limits: Self.limits)
        }
        #expect(driver.groupNames().isEmpty)
    }

    // MARK: v2

    private func v2Tree(controllers: String = "cpuset cpu io memory hugetlb pids") throws -> (FakeCgroupTree, String) {
        let tree = try FakeCgroupTree(templates: ["cg": CgroupTemplates.v2])
        try tree.makeGroups("cg/worker.slice")
        tree.setFile("cg/worker.slice/cgroup.controllers", controllers)
        return (tree, tree.path("cg/worker.slice"))
    }

    @Test func v2InitEnablesControllersInOwnGroupAndDgrid() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        #expect(driver.controllers == ["cpu", "memory", "pids"])
        #expect(tree.writes.map(\.description) == [
            "cg/worker.slice/cgroup.subtree_control <- +cpu +memory +pids",
            "cg/worker.slice/dgrid/cgroup.subtree_control <- +cpu +memory +pids",
        ])
        tree.clearLog()
        _ = try CgroupV2Driver(ownGroup: own, fs: tree)
        #expect(tree.writes.isEmpty, "a second start finds everything enabled")
    }

    @Test func v2CreateWritesExactLimits() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        tree.clearLog()
        _ = try driver.create(name: "t1", limits: ResourceLimits(memoryBytes: 64 << 20, cpus: try CPUQuota(cpus: 1.5), pids: 16))
        #expect(tree.writes.map(\.description) == [
            "cg/worker.slice/dgrid/t1/memory.max <- 67108864",
            "cg/worker.slice/dgrid/t1/memory.swap.max <- 0",
            "cg/worker.slice/dgrid/t1/memory.oom.group <- 1",
            "cg/worker.slice/dgrid/t1/cpu.max <- 150000 100000",
            "cg/worker.slice/dgrid/t1/pids.max <- 16",
        ])
    }

    @Test func v2NoLimitsMeansNoWrites() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        tree.clearLog()
        _ = try driver.create(name: "t1", limits: ResourceLimits())
        #expect(tree.writes.isEmpty)
        #expect(tree.exists(tree.path("cg/worker.slice/dgrid/t1")))
    }

    @Test func v2AddKillRemove() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        let group = try driver.create(name: "t1", limits: ResourceLimits(pids: 4))
        tree.clearLog()
        try group.add(pid: Self.fakePid)
        #expect(tree.contents("cg/worker.slice/dgrid/t1/cgroup.events")?.hasPrefix("populated 1") == true)
        try group.remove()
        #expect(tree.writes.map(\.description) == [
            "cg/worker.slice/dgrid/t1/cgroup.procs <- 999991",
            "cg/worker.slice/dgrid/t1/cgroup.kill <- 1",
        ])
        #expect(tree.kills.isEmpty, "cgroup.kill needs no per-pid signals")
        #expect(!tree.exists(tree.path("cg/worker.slice/dgrid/t1")))
    }

    @Test func v2RemoveTakesChildGroupsTheSandboxMadeWithIt() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        let group = try driver.create(name: "t1", limits: ResourceLimits())
        try tree.makeGroups("cg/worker.slice/dgrid/t1/inner/deeper")
        try group.remove()
        #expect(!tree.exists(own + "/dgrid/t1"))
    }

    @Test func v2KillFallsBackToSignallingEachPidWithoutCgroupKill() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        let group = try driver.create(name: "t1", limits: ResourceLimits())
        try group.add(pid: Self.fakePid)
        try group.add(pid: Self.fakePid + 1)
        tree.failNextWrite(to: "cg/worker.slice/dgrid/t1/cgroup.kill", errno: ENOENT)
        group.killAll()
        #expect(tree.kills == [Self.fakePid, Self.fakePid + 1])
        #expect(tree.contents("cg/worker.slice/dgrid/t1/cgroup.procs") == "")
    }

    @Test func v2StatsReadTheKernelCounters() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        let group = try driver.create(name: "t1", limits: ResourceLimits())
        tree.setFile("cg/worker.slice/dgrid/t1/cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
        tree.setFile("cg/worker.slice/dgrid/t1/memory.peak", "4096\n")
        tree.setFile("cg/worker.slice/dgrid/t1/memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 1\n")
        tree.setFile("cg/worker.slice/dgrid/t1/pids.events", "max 0\n")
        #expect(group.stats() == CgroupStats(cpuNanoseconds: 2_500_000, peakMemoryBytes: 4096, oomKilled: true, pidsLimitHit: false))
    }

    @Test func v2OnlyOffersWhatTheOwnGroupHas() throws {
        let (tree, own) = try v2Tree(controllers: "cpu io")
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        #expect(driver.controllers == ["cpu"])
        #expect(throws: CgroupError.missingController("memory")) { _ = try driver.create(name: "x", limits: ResourceLimits(memoryBytes: 1 << 20)) }
        #expect(throws: CgroupError.missingController("pids")) { _ = try driver.create(name: "x", limits: ResourceLimits(pids: 1)) }
    }

    @Test func v2BusySubtreeControlIsTheNoInternalProcessesRule() throws {
        let (tree, own) = try v2Tree()
        tree.failNextWrite(to: "cg/worker.slice/cgroup.subtree_control", errno: EBUSY)
        #expect(throws: CgroupError.noInternalProcesses(group: own)) { _ = try CgroupV2Driver(ownGroup: own, fs: tree) }
    }

    @Test func v2RemoveStaleKeepsTheKeptOnes() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        for name in ["a", "b", "c"] { _ = try driver.create(name: name, limits: ResourceLimits()) }
        #expect(driver.removeStale(keep: ["b"]) == ["a", "c"])
        #expect(tree.subdirectories(of: own + "/dgrid") == ["b"])
    }

    @Test func v2RecreatesDgridIfItWasRemoved() throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        try tree.removeDirectory(own + "/dgrid")
        _ = try driver.create(name: "t1", limits: ResourceLimits())
        #expect(tree.exists(own + "/dgrid/t1"))
    }

    // MARK: names

    @Test(arguments: ["", ".", "..", "a/b", "../escape", "cgroup.procs", "memory.max", "with space", "nul\0", String(repeating: "x", count: 129)])
    func rejectsNamesThatAreNotPlainWords(name: String) throws {
        let (tree, own) = try v2Tree()
        let driver = try CgroupV2Driver(ownGroup: own, fs: tree)
        #expect(throws: CgroupError.invalidName(name)) { _ = try driver.create(name: name, limits: ResourceLimits()) }
    }

    @Test func acceptsSandboxIDs() throws {
        try CgroupName.validate("4242-123456789012-7")
        try CgroupName.validate("stale-test")
    }
}

private func unlinkFile(_ path: String) throws {
    if unlink(path) != 0 { throw CgroupErrno(code: errno) }
}
