import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// Parsing /proc/self/mountinfo and /proc/self/cgroup, and choosing v1 or v2.
@Suite(.unit) struct CgroupProbeTests {
    // MARK: samples

    static let pureV2Mountinfo = """
        22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw
        24 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        """
    static let pureV2Cgroup = "0::/system.slice/dgrid.service\n"

    /// This host, verbatim: every v1 controller on its own mount, an empty cgroup2 beside them.
    static let hybridMountinfo = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
        37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
        38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """
    static let hybridCgroup = """
        9:name=systemd:/
        8:pids:/
        7:blkio:/
        6:freezer:/
        5:devices:/
        4:memory:/process_api/818dbd2b3e5408a1b6d270e83f875e73
        3:cpuset:/
        2:cpuacct:/
        1:cpu:/
        0::/

        """

    /// systemd's classic layout: cpu and cpuacct co-mounted, no freezer, optional fields present.
    static let coMountedMountinfo = """
        24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
        25 24 0:21 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
        26 24 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
        27 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
        28 24 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
        29 24 0:25 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
        """
    static let coMountedCgroup = """
        12:pids:/user.slice/user-1000.slice/session-2.scope
        5:cpu,cpuacct:/user.slice
        4:memory:/user.slice/user-1000.slice/session-2.scope
        1:name=systemd:/user.slice/user-1000.slice/session-2.scope
        0::/user.slice/user-1000.slice/session-2.scope
        """

    // MARK: parsing

    @Test func parsesHybridMountsWithTheirControllers() {
        let mounts = CgroupProbe.parseMountinfo(Self.hybridMountinfo)
        #expect(mounts.count == 10, "the tmpfs is not a cgroup mount")
        #expect(mounts.first { $0.mountPoint == "/sys/fs/cgroup/memory" } == CgroupMount(mountPoint: "/sys/fs/cgroup/memory", root: "/", version: .v1, controllers: ["memory"]))
        #expect(mounts.first { $0.mountPoint == "/sys/fs/cgroup/systemd" }?.controllers == [], "name=systemd is a named hierarchy, not a controller")
        #expect(mounts.first { $0.version == .v2 } == CgroupMount(mountPoint: "/sys/fs/cgroup/unified", root: "/", version: .v2, controllers: []))
    }

    @Test func parsesCoMountedControllersAndOptionalFields() {
        let mounts = CgroupProbe.parseMountinfo(Self.coMountedMountinfo)
        #expect(mounts.map(\.mountPoint) == ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"])
        #expect(mounts[2].controllers == ["cpu", "cpuacct"])
    }

    @Test func unescapesOctalInMountPoints() {
        let line = "50 24 0:40 /a\\040b /mnt/my\\040cgroups rw - cgroup cgroup rw,clone_children,pids,release_agent=/x"
        let mount = CgroupProbe.parseMountinfo(line).first
        #expect(mount?.mountPoint == "/mnt/my cgroups")
        #expect(mount?.root == "/a b")
        #expect(mount?.controllers == ["pids"], "flags and key=value options are not controllers")
    }

    @Test func parsesMembershipsIncludingColonsInPaths() {
        let memberships = CgroupProbe.parseMemberships(Self.coMountedCgroup + "\n3:freezer:/odd:name\n")
        #expect(memberships.count == 6)
        #expect(memberships[1] == CgroupMembership(hierarchyID: 5, controllers: ["cpu", "cpuacct"], path: "/user.slice"))
        #expect(memberships[4] == CgroupMembership(hierarchyID: 0, controllers: [], path: "/user.slice/user-1000.slice/session-2.scope"))
        #expect(memberships[5].path == "/odd:name")
    }

    @Test(arguments: [
        ("/", "/a/b", "/sys/fs/cgroup/memory/a/b"),
        ("/", "/", "/sys/fs/cgroup/memory"),
        ("/docker/abc", "/docker/abc", "/sys/fs/cgroup/memory"),
        ("/docker/abc", "/docker/abc/inner", "/sys/fs/cgroup/memory/inner"),
        ("/docker/abc", "/docker/abcd", nil),
        ("/", "/../outside", nil),
    ] as [(String, String, String?)])
    func mapsGroupPathsThroughTheMountRoot(root: String, path: String, expected: String?) {
        let mount = CgroupMount(mountPoint: "/sys/fs/cgroup/memory", root: root, version: .v1, controllers: ["memory"])
        #expect(CgroupProbe.directory(of: path, in: mount) == expected)
    }

    // MARK: choosing

    /// Writes the proc files into the fake tree and plans against it.
    private func plan(_ tree: FakeCgroupTree, mountinfo: String, cgroup: String) throws(CgroupError) -> CgroupPlan {
        tree.setFile("mountinfo", mountinfo)
        tree.setFile("cgroup", cgroup)
        return try Cgroups.plan(mountinfoPath: tree.path("mountinfo"), cgroupPath: tree.path("cgroup"), hostRoot: tree.root, fs: tree)
    }

    private func v2Tree(procs: String, subtree: String) throws -> FakeCgroupTree {
        let tree = try FakeCgroupTree(templates: ["sys/fs/cgroup": CgroupTemplates.v2])
        try tree.makeGroups("sys/fs/cgroup/system.slice/dgrid.service")
        tree.setFile("sys/fs/cgroup/system.slice/dgrid.service/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc")
        tree.setFile("sys/fs/cgroup/system.slice/dgrid.service/cgroup.subtree_control", subtree)
        tree.setFile("sys/fs/cgroup/system.slice/dgrid.service/cgroup.procs", procs)
        return tree
    }

    @Test func pureV2WithDelegatedControllersIsV2() throws {
        let tree = try v2Tree(procs: "", subtree: "cpu memory pids")
        let chosen = try plan(tree, mountinfo: Self.pureV2Mountinfo, cgroup: Self.pureV2Cgroup)
        #expect(chosen == .v2(ownGroup: tree.path("sys/fs/cgroup/system.slice/dgrid.service")))
    }

    @Test func pureV2WithEmptyGroupCanEnableControllers() throws {
        let tree = try v2Tree(procs: "", subtree: "")
        let chosen = try plan(tree, mountinfo: Self.pureV2Mountinfo, cgroup: Self.pureV2Cgroup)
        #expect(chosen == .v2(ownGroup: tree.path("sys/fs/cgroup/system.slice/dgrid.service")))
    }

    @Test func pureV2WithTheWorkerInItsGroupRefusesWithTheRule() throws {
        let tree = try v2Tree(procs: "1234\n", subtree: "")
        #expect(throws: CgroupError.noInternalProcesses(group: tree.path("sys/fs/cgroup/system.slice/dgrid.service"))) {
            _ = try plan(tree, mountinfo: Self.pureV2Mountinfo, cgroup: Self.pureV2Cgroup)
        }
    }

    @Test func pureV2WithOnlyTheWorkerInItsGroupMovesItIntoALeaf() throws {
        let tree = try v2Tree(procs: "\(getpid())\n", subtree: "")
        let own = tree.path("sys/fs/cgroup/system.slice/dgrid.service")
        let chosen = try plan(tree, mountinfo: Self.pureV2Mountinfo, cgroup: Self.pureV2Cgroup)
        #expect(chosen == .v2(ownGroup: own, supervisorLeaf: own + "/dgrid-supervisor"))
        let driver = try Cgroups.detectDriver(mountinfoPath: tree.path("mountinfo"), cgroupPath: tree.path("cgroup"),
                                              hostRoot: tree.root, fs: tree)
        #expect(driver.version == .v2)
        #expect(tree.read(own + "/dgrid-supervisor/cgroup.procs") == "\(getpid())\n")
        #expect(CgroupText.words(tree.read(own + "/cgroup.subtree_control")) == ["cpu", "memory", "pids"])
    }

    @Test func rootlessWithoutDelegationIsUnavailableWithAReason() throws {
        let tree = try v2Tree(procs: "", subtree: "cpu memory pids")
        tree.setReadOnly(true)
        do {
            _ = try plan(tree, mountinfo: Self.pureV2Mountinfo, cgroup: Self.pureV2Cgroup)
            Issue.record("expected .unavailable")
        } catch {
            guard case .unavailable(let reason) = error else { Issue.record("got \(error)"); return }
            #expect(reason.contains("not writable by uid"))
            #expect(reason.contains("system.slice/dgrid.service"))
            #expect(!reason.contains("\n"), "one line for the CLI")
        }
    }

    private func hybridTree() throws -> FakeCgroupTree {
        let tree = try FakeCgroupTree(templates: ["sys/fs/cgroup/unified": CgroupTemplates.v2])
        for dir in ["cpu", "cpuacct", "cpuset", "memory/process_api/818dbd2b3e5408a1b6d270e83f875e73", "devices", "freezer", "blkio", "pids", "systemd", "unified"] {
            try tree.makeGroups("sys/fs/cgroup/" + dir)
        }
        tree.setFile("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb")
        return tree
    }

    @Test func hybridHostLikeThisOneIsV1() throws {
        let tree = try hybridTree()
        let chosen = try plan(tree, mountinfo: Self.hybridMountinfo, cgroup: Self.hybridCgroup)
        #expect(chosen == .v1(ownGroups: [
            "cpu": tree.path("sys/fs/cgroup/cpu"),
            "cpuacct": tree.path("sys/fs/cgroup/cpuacct"),
            "freezer": tree.path("sys/fs/cgroup/freezer"),
            "memory": tree.path("sys/fs/cgroup/memory/process_api/818dbd2b3e5408a1b6d270e83f875e73"),
            "pids": tree.path("sys/fs/cgroup/pids"),
        ]))
    }

    @Test func rootlessOnAHybridHostBlamesTheV1Hierarchy() throws {
        let tree = try hybridTree()
        tree.setReadOnly(true)
        #expect(throws: CgroupError.unavailable(reason: "\(tree.path("sys/fs/cgroup/cpu")) is not writable by uid \(geteuid()); run as root or under a cgroup delegated to this user")) {
            _ = try plan(tree, mountinfo: Self.hybridMountinfo, cgroup: Self.hybridCgroup)
        }
    }

    @Test func coMountedCpuAndCpuacctShareOneDirectory() throws {
        let tree = try FakeCgroupTree(templates: [:])
        try tree.makeGroups("sys/fs/cgroup/cpu,cpuacct/user.slice")
        try tree.makeGroups("sys/fs/cgroup/memory/user.slice/user-1000.slice/session-2.scope")
        try tree.makeGroups("sys/fs/cgroup/pids/user.slice/user-1000.slice/session-2.scope")
        try tree.makeGroups("sys/fs/cgroup/unified/user.slice/user-1000.slice/session-2.scope")
        let chosen = try plan(tree, mountinfo: Self.coMountedMountinfo, cgroup: Self.coMountedCgroup)
        #expect(chosen == .v1(ownGroups: [
            "cpu": tree.path("sys/fs/cgroup/cpu,cpuacct/user.slice"),
            "cpuacct": tree.path("sys/fs/cgroup/cpu,cpuacct/user.slice"),
            "memory": tree.path("sys/fs/cgroup/memory/user.slice/user-1000.slice/session-2.scope"),
            "pids": tree.path("sys/fs/cgroup/pids/user.slice/user-1000.slice/session-2.scope"),
        ]))
    }

    @Test func nothingMountedIsUnavailable() throws {
        let tree = try FakeCgroupTree(templates: [:])
        #expect(throws: CgroupError.unavailable(reason: "no cgroup v1 or v2 hierarchy is mounted for this process")) {
            _ = try plan(tree, mountinfo: "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n", cgroup: "0::/\n")
        }
    }

    @Test func detectDriverBuildsTheChosenDriverOnTheTree() throws {
        let tree = try v2Tree(procs: "", subtree: "")
        tree.setFile("mountinfo", Self.pureV2Mountinfo)
        tree.setFile("cgroup", Self.pureV2Cgroup)
        let driver = try Cgroups.detectDriver(mountinfoPath: tree.path("mountinfo"), cgroupPath: tree.path("cgroup"), hostRoot: tree.root, fs: tree)
        #expect(driver.version == .v2)
        #expect((driver as? CgroupV2Driver)?.controllers == ["cpu", "memory", "pids"])
    }
}
