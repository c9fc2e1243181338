import Glibc
import SandboxSupport

/// cgroup v2: each sandbox gets `<own group>/dgrid/<name>`, one directory holding
/// every controller.
public struct CgroupV2Driver: CgroupDriver {
    public var version: CgroupVersion { .v2 }
    /// The worker's own group, e.g. `/sys/fs/cgroup/system.slice/dgrid.service`.
    public let ownGroup: String
    /// The controllers sandbox groups get: those of memory, cpu and pids the own group offers.
    public let controllers: Set<String>
    let fs: any CgroupFilesystem

    static let cpuPeriod: UInt64 = 100_000

    /// Creates `dgrid/` under `ownGroup` and enables memory, cpu and pids (those
    /// offered) in both `cgroup.subtree_control` files, so `create` is just mkdir
    /// and the limit writes. Call once per worker.
    /// The leaf a worker that is alone in its group moves itself into, beside `dgrid/`.
    static let supervisorLeafName = "dgrid-supervisor"

    public init(ownGroup: String) throws(CgroupError) {
        try self.init(ownGroup: ownGroup, fs: KernelCgroupFilesystem())
    }

    /// - Parameter supervisorLeaf: a group this process moves itself into first,
    ///   so `ownGroup` holds no process and may enable controllers (cgroup v2's
    ///   "no internal processes" rule).
    init(ownGroup: String, supervisorLeaf: String? = nil, fs: any CgroupFilesystem) throws(CgroupError) {
        self.ownGroup = ownGroup.count > 1 && ownGroup.hasSuffix("/") ? String(ownGroup.dropLast()) : ownGroup
        self.fs = fs
        if let supervisorLeaf { try Self.moveSelf(into: supervisorLeaf, fs: fs) }
        self.controllers = try Self.prepareParent(ownGroup: self.ownGroup, fs: fs)
    }

    private static func moveSelf(into leaf: String, fs: any CgroupFilesystem) throws(CgroupError) {
        do throws(CgroupErrno) {
            try CgroupTree.ensureDirectory(leaf, fs: fs)
        } catch {
            throw .create(path: leaf, errno: error.code)
        }
        do throws(CgroupErrno) {
            try fs.write("\(getpid())", to: leaf + "/cgroup.procs")
        } catch {
            throw .write(path: leaf + "/cgroup.procs", value: "\(getpid())", errno: error.code)
        }
    }

    var parent: String { ownGroup + "/dgrid" }

    public func create(name: String, limits: ResourceLimits) throws(CgroupError) -> SandboxCgroup {
        try CgroupName.validate(name)
        if limits.memoryBytes != nil && !controllers.contains("memory") { throw .missingController("memory") }
        if limits.cpus != nil && !controllers.contains("cpu") { throw .missingController("cpu") }
        if limits.pids != nil && !controllers.contains("pids") { throw .missingController("pids") }

        let path = parent + "/" + name
        try makeGroup(path)
        do throws(CgroupError) {
            if let bytes = limits.memoryBytes {
                try write("\(bytes)", path + "/memory.max")
                // Absent when the kernel has no swap accounting; then there is no swap to turn off.
                try write("0", path + "/memory.swap.max", optional: true)
                // One OOM kill takes the whole sandbox, not a random process inside it.
                try write("1", path + "/memory.oom.group")
            }
            if let cpus = limits.cpus {
                try write("\(cpus.quotaMicroseconds(period: Self.cpuPeriod)) \(Self.cpuPeriod)", path + "/cpu.max")
            }
            if let pids = limits.pids {
                try write("\(pids)", path + "/pids.max")
            }
        } catch {
            try? fs.removeDirectory(path)
            throw error
        }
        return CgroupV2Group(path: path, fs: fs)
    }

    @discardableResult
    public func removeStale(keeping keep: (String) -> Bool) -> [String] {
        var removed: [String] = []
        for name in fs.subdirectories(of: parent) where !keep(name) {
            if (try? CgroupV2Group(path: parent + "/" + name, fs: fs).remove()) != nil {
                removed.append(name)
            }
        }
        return removed
    }

    private func makeGroup(_ path: String) throws(CgroupError) {
        do throws(CgroupErrno) {
            try CgroupTree.ensureDirectory(path, fs: fs)
        } catch {
            guard error.code == ENOENT else { throw .create(path: path, errno: error.code) }
            // Someone removed the empty `dgrid/` since init; set it up again once.
            _ = try Self.prepareParent(ownGroup: ownGroup, fs: fs)
            do throws(CgroupErrno) {
                try CgroupTree.ensureDirectory(path, fs: fs)
            } catch {
                throw .create(path: path, errno: error.code)
            }
        }
    }

    private func write(_ value: String, _ path: String, optional: Bool = false) throws(CgroupError) {
        do throws(CgroupErrno) {
            try fs.write(value, to: path)
        } catch {
            if optional && error.code == ENOENT { return }
            throw .write(path: path, value: value, errno: error.code)
        }
    }

    /// Returns the controllers enabled for `dgrid/*`.
    static func prepareParent(ownGroup: String, fs: any CgroupFilesystem) throws(CgroupError) -> Set<String> {
        let offered = CgroupText.words(fs.read(ownGroup + "/cgroup.controllers"))
        let wanted = Cgroups.v2Needed.filter(offered.contains)
        try enable(wanted, in: ownGroup, fs: fs)
        let parent = ownGroup + "/dgrid"
        do throws(CgroupErrno) {
            try CgroupTree.ensureDirectory(parent, fs: fs)
        } catch {
            throw .create(path: parent, errno: error.code)
        }
        try enable(wanted, in: parent, fs: fs)
        return Set(wanted)
    }

    /// Writes only the controllers not yet enabled: a no-op on every start after the first.
    private static func enable(_ controllers: [String], in group: String, fs: any CgroupFilesystem) throws(CgroupError) {
        let file = group + "/cgroup.subtree_control"
        let enabled = CgroupText.words(fs.read(file))
        let missing = controllers.filter { !enabled.contains($0) }
        if missing.isEmpty { return }
        let value = missing.map { "+" + $0 }.joined(separator: " ")
        do throws(CgroupErrno) {
            try fs.write(value, to: file)
        } catch {
            // EBUSY is the "no internal processes" rule: `group` holds processes.
            if error.code == EBUSY { throw .noInternalProcesses(group: group) }
            throw .write(path: file, value: value, errno: error.code)
        }
    }
}

/// One sandbox's v2 group.
struct CgroupV2Group: SandboxCgroup {
    let path: String
    let fs: any CgroupFilesystem

    func add(pid: pid_t) throws(CgroupError) {
        let file = path + "/cgroup.procs"
        do throws(CgroupErrno) {
            try fs.write("\(pid)", to: file)
        } catch {
            throw .write(path: file, value: "\(pid)", errno: error.code)
        }
    }

    func stats() -> CgroupStats {
        let memoryEvents = fs.read(path + "/memory.events")
        // oom_group_kill counts the group kills memory.oom.group asks for; oom_kill the victims.
        let oomKills = (CgroupText.value(of: "oom_kill", in: memoryEvents) ?? 0) + (CgroupText.value(of: "oom_group_kill", in: memoryEvents) ?? 0)
        return CgroupStats(
            cpuNanoseconds: CgroupText.value(of: "usage_usec", in: fs.read(path + "/cpu.stat")).map { $0 * 1_000 },
            peakMemoryBytes: CgroupText.number(fs.read(path + "/memory.peak")),
            oomKilled: oomKills > 0,
            pidsLimitHit: (CgroupText.value(of: "max", in: fs.read(path + "/pids.events")) ?? 0) > 0
        )
    }

    func killAll() {
        // cgroup.kill (5.14+) kills the whole subtree atomically, forks in flight included.
        if (try? fs.write("1", to: path + "/cgroup.kill")) != nil { return }
        // Older kernels: signal what is listed until nothing is; pids.max bounds a fork race.
        let deadline = CgroupWait.deadline(after: CgroupWait.killTimeout)
        _ = CgroupWait.until(deadline) {
            let pids = CgroupText.pids(fs.read(path + "/cgroup.procs"))
            for pid in pids { try? fs.kill(pid, SIGKILL) }
            return pids.isEmpty
        }
    }

    func freeze() -> Bool {
        guard (try? fs.write("1", to: path + "/cgroup.freeze")) != nil else { return false }
        let frozen = CgroupWait.until(CgroupWait.deadline(after: CgroupWait.killTimeout)) {
            CgroupText.value(of: "frozen", in: fs.read(path + "/cgroup.events")) == 1
        }
        if !frozen { thaw() }
        return frozen
    }

    func thaw() {
        try? fs.write("0", to: path + "/cgroup.freeze")
    }

    func remove() throws(CgroupError) {
        guard fs.exists(path) else { return }
        killAll()
        let deadline = CgroupWait.deadline(after: CgroupWait.killTimeout)
        // rmdir fails with EBUSY until the last task has gone; cgroup.events says when.
        _ = CgroupWait.until(deadline) {
            guard let events = fs.read(path + "/cgroup.events") else { return true }
            return CgroupText.value(of: "populated", in: events) == 0
        }
        try CgroupTree.remove(path, fs: fs, deadline: deadline)
    }
}
