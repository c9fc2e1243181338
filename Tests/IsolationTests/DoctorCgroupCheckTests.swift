import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// `dgrid doctor`'s `cgroups` check (docs/ARCHITECTURE.md §12) on a fake cgroup
/// tree (`FakeCgroupTree`; `/proc/self/mountinfo` and `/proc/self/cgroup`
/// are files of the fake tree too, through `HostPaths`, the seam only tests
/// use): what it says about a hybrid host, and each way it fails with its fix.
/// The real kernel's hybrid hierarchy is `DoctorCLITests`'s.
@Suite(.unit) struct DoctorCgroupCheckTests {
    /// This host's layout (CgroupProbeTests' sample), every v1 controller with the control files the drivers write.
    private func hybridTree(mountinfo: String = CgroupProbeTests.hybridMountinfo) throws -> (FakeCgroupTree, HostPaths) {
        let tree = try FakeCgroupTree(templates: [
            "sys/fs/cgroup/memory": CgroupTemplates.v1Memory, "sys/fs/cgroup/cpu": CgroupTemplates.v1CPU,
            "sys/fs/cgroup/cpuacct": CgroupTemplates.v1CPUAcct, "sys/fs/cgroup/pids": CgroupTemplates.v1Pids,
            "sys/fs/cgroup/freezer": CgroupTemplates.v1Freezer, "sys/fs/cgroup/unified": CgroupTemplates.v2,
        ])
        for dir in ["cpu", "cpuacct", "cpuset", "memory/process_api/818dbd2b3e5408a1b6d270e83f875e73", "devices", "freezer", "blkio", "pids", "systemd", "unified"] {
            try tree.makeGroups("sys/fs/cgroup/" + dir)
        }
        // The unified mount of a hybrid host offers nothing a sandbox needs.
        tree.setFile("sys/fs/cgroup/unified/cgroup.controllers", "")
        try FileManager.default.createDirectory(atPath: tree.path("proc/self"), withIntermediateDirectories: true)
        tree.setFile("proc/self/mountinfo", mountinfo)
        tree.setFile("proc/self/cgroup", CgroupProbeTests.hybridCgroup)
        return (tree, HostPaths(proc: tree.path("proc")))
    }

    @Test func aHybridHostIsDescribedAsItIsAndEveryLimitIsTried() throws {
        let (tree, paths) = try hybridTree()
        let check = CgroupCheck.check(paths: paths, hostRoot: tree.root, fs: tree, runWithoutLimits: false)
        #expect(check.status == .pass, "\(check)")
        #expect(check.detail.hasPrefix("hybrid: v1 controllers "), "\(check.detail)")
        #expect(check.detail.contains("cgroup2 at /sys/fs/cgroup/unified offering no controllers (without cpu, memory, pids: not used)"), "\(check.detail)")
        #expect(check.detail.contains("uses cgroup v1"), "\(check.detail)")
        #expect(check.detail.contains("limits memory, cpu, pids, freezer"), "\(check.detail)")
        // A group per limit, made and removed again under the worker's own.
        let made = tree.writes.filter { $0.file.hasSuffix("pids.max") || $0.file.hasSuffix("memory.limit_in_bytes") || $0.file.hasSuffix("cpu.cfs_quota_us") }
        #expect(made.count == 3, "\(tree.writes)")
        for hierarchy in ["memory/process_api/818dbd2b3e5408a1b6d270e83f875e73", "cpu", "pids", "freezer"] {
            #expect(tree.subdirectories(of: tree.path("sys/fs/cgroup/\(hierarchy)/dgrid")).isEmpty, "nothing left in \(hierarchy)")
        }
    }

    @Test func aMissingPidsControllerFailsAndNamesIt() throws {
        let withoutPids = CgroupProbeTests.hybridMountinfo.split(separator: "\n").filter { !$0.hasSuffix("rw,pids") }.joined(separator: "\n")
        let (tree, paths) = try hybridTree(mountinfo: withoutPids)
        let check = CgroupCheck.check(paths: paths, hostRoot: tree.root, fs: tree, runWithoutLimits: false)
        #expect(check.status == .fail, "\(check)")
        #expect(check.detail.contains("cannot limit pids"), "\(check.detail)")
        #expect(check.fix?.contains("enable the pids controller") == true, "\(String(describing: check.fix))")
    }

    @Test func aHierarchyTheWorkerCannotWriteFailsWithDelegationAsTheFix() throws {
        let (tree, paths) = try hybridTree()
        tree.setReadOnly(true)
        let check = CgroupCheck.check(paths: paths, hostRoot: tree.root, fs: tree, runWithoutLimits: false)
        #expect(check.status == .fail, "\(check)")
        #expect(check.detail.contains("is not writable by uid"), "\(check.detail)")
        let fix = check.fix ?? ""
        #expect(fix.contains("Delegate=yes") && fix.contains("--no-cgroup-limits"), "\(fix)")
        // The same host with --no-cgroup-limits: the worker runs, without limits.
        let lenient = CgroupCheck.check(paths: paths, hostRoot: tree.root, fs: tree, runWithoutLimits: true)
        #expect(lenient.status == .warn, "\(lenient)")
        #expect(lenient.detail.contains("without memory, CPU and pids limits"), "\(lenient.detail)")
    }

    @Test func noFreezerIsAWarningAboutCheckpoints() throws {
        let withoutFreezer = CgroupProbeTests.hybridMountinfo.split(separator: "\n").filter { !$0.hasSuffix("rw,freezer") }.joined(separator: "\n")
        let (tree, paths) = try hybridTree(mountinfo: withoutFreezer)
        let check = CgroupCheck.check(paths: paths, hostRoot: tree.root, fs: tree, runWithoutLimits: false)
        #expect(check.status == .warn, "\(check)")
        #expect(check.detail.contains("checkpoints are copied while the task runs"), "\(check.detail)")
        #expect(check.fix?.contains("freezer") == true)
    }

    @Test func unreadableProcFilesFail() throws {
        let tree = try FakeCgroupTree(templates: [:])
        let check = CgroupCheck.check(paths: HostPaths(proc: tree.path("no-proc")), hostRoot: tree.root, fs: tree, runWithoutLimits: false)
        #expect(check.status == .fail)
        #expect(check.fix == "mount /proc")
    }
}
