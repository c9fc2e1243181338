import Glibc
import SandboxSupport

/// Which hierarchy to use, and the worker's own group directory in it.
enum CgroupPlan: Equatable, Sendable {
    /// `supervisorLeaf`: where this process moves itself first, when it is the
    /// only process in its group (a systemd service with `Delegate=yes`), so the
    /// group can enable controllers for its children.
    case v2(ownGroup: String, supervisorLeaf: String? = nil)
    /// Controller → own group directory; co-mounted controllers share one.
    case v1(ownGroups: [String: String])
}

/// Chooses the cgroup driver for this host (docs/ARCHITECTURE.md §3).
public enum Cgroups {
    /// What a v2 group must offer before we use v2 at all.
    static let v2Needed = ["cpu", "memory", "pids"]
    /// The v1 controllers we use when present; any subset works, limits needing a
    /// missing one fail at `create`.
    static let v1Wanted = ["cpu", "cpuacct", "freezer", "memory", "pids"]

    /// Picks v2 when the worker's unified group offers memory, cpu and pids and can
    /// enable them for children; otherwise v1 with whichever of memory, cpu, cpuacct,
    /// pids and freezer are mounted (hybrid hosts land here). Creates `dgrid/` in the
    /// chosen hierarchy.
    ///
    /// - Parameters:
    ///   - mountinfoPath: the mount table to read (`/proc/self/mountinfo`).
    ///   - cgroupPath: this process's memberships (`/proc/self/cgroup`).
    ///   - hostRoot: prefixed to every mount point, so tests can lay out a fake tree.
    /// - Throws: `.unavailable(reason:)` when nothing is mounted or the hierarchy is
    ///   not writable by this user (rootless without delegation);
    ///   `.noInternalProcesses` on a v2-only host whose group holds the worker.
    public static func detectDriver(
        mountinfoPath: String = "/proc/self/mountinfo",
        cgroupPath: String = "/proc/self/cgroup",
        hostRoot: String = ""
    ) throws(CgroupError) -> CgroupDriver {
        try detectDriver(mountinfoPath: mountinfoPath, cgroupPath: cgroupPath, hostRoot: hostRoot, fs: KernelCgroupFilesystem())
    }

    static func detectDriver(mountinfoPath: String, cgroupPath: String, hostRoot: String, fs: any CgroupFilesystem) throws(CgroupError) -> CgroupDriver {
        switch try plan(mountinfoPath: mountinfoPath, cgroupPath: cgroupPath, hostRoot: hostRoot, fs: fs) {
        case .v2(let ownGroup, let supervisorLeaf):
            return try CgroupV2Driver(ownGroup: ownGroup, supervisorLeaf: supervisorLeaf, fs: fs)
        case .v1(let ownGroups):
            return try CgroupV1Driver(ownGroups: ownGroups, fs: fs)
        }
    }

    static func plan(mountinfoPath: String, cgroupPath: String, hostRoot: String, fs: any CgroupFilesystem) throws(CgroupError) -> CgroupPlan {
        guard let mountinfo = fs.read(mountinfoPath) else { throw .unavailable(reason: "cannot read \(mountinfoPath)") }
        guard let cgroup = fs.read(cgroupPath) else { throw .unavailable(reason: "cannot read \(cgroupPath)") }
        return try plan(mounts: CgroupProbe.parseMountinfo(mountinfo), memberships: CgroupProbe.parseMemberships(cgroup), hostRoot: hostRoot, fs: fs)
    }

    static func plan(mounts: [CgroupMount], memberships: [CgroupMembership], hostRoot: String, fs: any CgroupFilesystem) throws(CgroupError) -> CgroupPlan {
        // Why v2 was passed over. `blocking` refusals (v2 has the controllers but we
        // cannot use them) explain a failure better than v1's; the rest only matter
        // when there is no v1 at all.
        var v2Refusal: (error: CgroupError, blocking: Bool)?
        switch v2Verdict(mounts: mounts, memberships: memberships, hostRoot: hostRoot, fs: fs) {
        case .usable(let group, let supervisorLeaf): return .v2(ownGroup: group, supervisorLeaf: supervisorLeaf)
        case .refused(let error, let blocking): v2Refusal = (error, blocking)
        case .absent: break
        }

        var ownGroups: [String: String] = [:]
        for controller in v1Wanted {
            guard let membership = memberships.first(where: { $0.hierarchyID != 0 && $0.controllers.contains(controller) }) else { continue }
            for mount in mounts where mount.version == .v1 && mount.controllers.contains(controller) {
                if let dir = CgroupProbe.directory(of: membership.path, in: mount), fs.exists(hostRoot + dir) {
                    ownGroups[controller] = hostRoot + dir
                    break
                }
            }
        }
        if ownGroups.isEmpty {
            throw v2Refusal?.error ?? .unavailable(reason: "no cgroup v1 or v2 hierarchy is mounted for this process")
        }
        if let locked = Set(ownGroups.values).sorted().first(where: { !fs.isWritable($0) }) {
            throw v2Refusal.flatMap { $0.blocking ? $0.error : nil } ?? notWritable(locked)
        }
        return .v1(ownGroups: ownGroups)
    }

    private enum V2Verdict {
        case absent
        case usable(String, supervisorLeaf: String?)
        case refused(CgroupError, blocking: Bool)
    }

    private static func v2Verdict(mounts: [CgroupMount], memberships: [CgroupMembership], hostRoot: String, fs: any CgroupFilesystem) -> V2Verdict {
        guard let membership = memberships.first(where: { $0.hierarchyID == 0 }) else { return .absent }
        guard let mount = mounts.first(where: { $0.version == .v2 && CgroupProbe.directory(of: membership.path, in: $0) != nil }),
              let dir = CgroupProbe.directory(of: membership.path, in: mount) else { return .absent }
        let group = hostRoot + dir
        let offered = CgroupText.words(fs.read(group + "/cgroup.controllers"))
        let missing = v2Needed.filter { !offered.contains($0) }
        if !missing.isEmpty {
            // Hybrid hosts: the unified mount carries few or no controllers.
            return .refused(.unavailable(reason: "cgroup v2 group \(group) lacks the \(missing.joined(separator: ", ")) controller(s) and no cgroup v1 hierarchy is mounted"), blocking: false)
        }
        if !fs.isWritable(group) { return .refused(notWritable(group), blocking: true) }
        let enabled = CgroupText.words(fs.read(group + "/cgroup.subtree_control"))
        if !v2Needed.allSatisfy(enabled.contains) {
            // Only the true root may enable controllers while holding processes.
            let isRoot = membership.path == "/" && mount.root == "/"
            let procs = fs.read(group + "/cgroup.procs")
            if !isRoot && CgroupText.hasProcesses(procs) {
                // Alone in a delegated group: step into a leaf of it, as runc and
                // systemd's own delegation docs do. Never move anyone else.
                guard CgroupText.pids(procs).isEmpty else { return .refused(.noInternalProcesses(group: group), blocking: true) }
                return .usable(group, supervisorLeaf: group + "/" + CgroupV2Driver.supervisorLeafName)
            }
        }
        return .usable(group, supervisorLeaf: nil)
    }

    private static func notWritable(_ path: String) -> CgroupError {
        .unavailable(reason: "\(path) is not writable by uid \(geteuid()); run as root or under a cgroup delegated to this user")
    }
}
