import SandboxSupport

/// `cgroups`: which hierarchy a worker would use and what it can limit
/// (docs/ARCHITECTURE.md §3), said as the host has it — a hybrid host's empty
/// cgroup2 mount included. The driver a worker would pick (`Cgroups.plan`) is
/// then made to create and remove a group under the worker's own for each
/// limit a task can get (memory, CPU, pids, and the freezer checkpoints use),
/// so "delegated" is shown, not inferred from permissions. A plain function,
/// so the worker's periodic self-checks can call it too.
public enum CgroupCheck {
    /// The limits every task gets by default (`GridSettings.defaultMemoryBytes`, `defaultCPUs`, `defaultPids`).
    enum Limit: String, CaseIterable {
        case memory, cpu, pids, freezer

        var limits: ResourceLimits {
            switch self {
            case .memory: ResourceLimits(memoryBytes: 64 << 20)
            case .cpu: ResourceLimits(cpus: try? CPUQuota(cpus: 0.5))
            case .pids: ResourceLimits(pids: 32)
            case .freezer:
                { var limits = ResourceLimits(); limits.freezable = true; return limits }()
            }
        }
    }

    /// `runWithoutLimits`: the worker will run with `--no-cgroup-limits`, so no
    /// usable hierarchy is a warning, not a failure.
    public static func check(runWithoutLimits: Bool) -> HostCheck {
        check(paths: .host, hostRoot: "", fs: KernelCgroupFilesystem(), runWithoutLimits: runWithoutLimits)
    }

    static func check(paths: HostPaths, hostRoot: String, fs: any CgroupFilesystem, runWithoutLimits: Bool) -> HostCheck {
        let mountinfoPath = paths.proc + "/self/mountinfo", cgroupPath = paths.proc + "/self/cgroup"
        guard let mountinfo = fs.read(mountinfoPath), let cgroup = fs.read(cgroupPath) else {
            return .fail(.cgroups, "cannot read \(mountinfoPath) and \(cgroupPath)", fix: "mount /proc")
        }
        let mounts = CgroupProbe.parseMountinfo(mountinfo)
        let memberships = CgroupProbe.parseMemberships(cgroup)
        let layout = describe(mounts: mounts, memberships: memberships, hostRoot: hostRoot, fs: fs)
        let withoutLimits = "tasks would run without memory, CPU and pids limits"
        let plan: CgroupPlan
        do {
            plan = try Cgroups.plan(mounts: mounts, memberships: memberships, hostRoot: hostRoot, fs: fs)
        } catch {
            let fix = "run the worker as root, or in a cgroup delegated to its user (systemd: Delegate=yes), or pass --no-cgroup-limits to run tasks without limits"
            return runWithoutLimits
                ? .warn(.cgroups, "\(layout); \(error); with --no-cgroup-limits \(withoutLimits)", fix: fix)
                : .fail(.cgroups, "\(layout); \(error)", fix: fix)
        }
        let driver: CgroupDriver
        do {
            switch plan {
            case .v2(let ownGroup, let leaf): driver = try CgroupV2Driver(ownGroup: ownGroup, supervisorLeaf: leaf, fs: fs)
            case .v1(let ownGroups): driver = try CgroupV1Driver(ownGroups: ownGroups, fs: fs)
            }
        } catch {
            return .fail(.cgroups, "\(layout); the worker's own group cannot hold dgrid's: \(error)",
                         fix: "run the worker as root, or in a cgroup delegated to its user (systemd: Delegate=yes)")
        }
        var working: [String] = [], refused: [(Limit, CgroupError)] = []
        for limit in Limit.allCases {
            do {
                let group = try driver.create(name: SandboxID.next(), limits: limit.limits)
                // A group made "freezable" without a freezer hierarchy is made all the same: freeze it to know.
                let frozen = limit != .freezer || group.freeze()
                if limit == .freezer && frozen { group.thaw() }
                try group.remove()
                if frozen {
                    working.append(limit.rawValue)
                } else {
                    refused.append((limit, .missingController("freezer")))
                }
            } catch {
                refused.append((limit, error))
            }
        }
        let own: String
        switch plan {
        case .v2(let group, _): own = "uses cgroup v2 under \(group)"
        case .v1(let groups): own = "uses cgroup v1 under \(Set(groups.values).sorted().joined(separator: ", "))"
        }
        let summary = "\(layout); the worker \(own); created and removed a group that limits "
            + (working.isEmpty ? "nothing" : working.joined(separator: ", "))
        let essential = refused.filter { $0.0 != .freezer }
        if let (limit, error) = essential.first {
            let names = essential.map(\.0.rawValue).joined(separator: ", ")
            return .fail(.cgroups, "\(summary); cannot limit \(names): \(error)",
                         fix: limit == .pids || limit == .memory || limit == .cpu
                            ? "enable the \(names) controller for the worker's group (v1: mount it; v2: cgroup.subtree_control of the parent, systemd Delegate=yes)"
                            : "see the error above")
        }
        if let (_, error) = refused.first {
            return .warn(.cgroups, "\(summary); no freezer (\(error)): checkpoints are copied while the task runs",
                         fix: "mount the v1 freezer hierarchy, or use cgroup v2 (cgroup.freeze)")
        }
        return .pass(.cgroups, summary)
    }

    /// The hierarchies as mounted, in one clause: what v1 controllers there
    /// are, and what the unified (v2) mount offers this process's group.
    static func describe(mounts: [CgroupMount], memberships: [CgroupMembership], hostRoot: String, fs: any CgroupFilesystem) -> String {
        let v1 = Set(mounts.filter { $0.version == .v1 }.flatMap(\.controllers)).filter { !$0.hasPrefix("name=") }.sorted()
        let v2Mounts = mounts.filter { $0.version == .v2 }
        var parts: [String] = []
        if !v1.isEmpty { parts.append("v1 controllers \(v1.joined(separator: ", "))") }
        for mount in v2Mounts {
            let group = memberships.first { $0.hierarchyID == 0 }.flatMap { CgroupProbe.directory(of: $0.path, in: mount) }
            let offered = CgroupText.words(fs.read(hostRoot + (group ?? mount.mountPoint) + "/cgroup.controllers")).sorted()
            let lacking = Cgroups.v2Needed.filter { !offered.contains($0) }
            parts.append("cgroup2 at \(mount.mountPoint) offering " + (offered.isEmpty ? "no controllers" : offered.joined(separator: ", "))
                         + (lacking.isEmpty ? "" : " (without \(lacking.joined(separator: ", ")): not used)"))
        }
        if parts.isEmpty { return "no cgroup hierarchy is mounted" }
        let hybrid = !v1.isEmpty && !v2Mounts.isEmpty
        return (hybrid ? "hybrid: " : "") + parts.joined(separator: "; ")
    }
}
