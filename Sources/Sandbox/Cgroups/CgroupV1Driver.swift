import Glibc
import SandboxSupport

/// cgroup v1: each sandbox gets `<own group>/dgrid/<name>` in every controller
/// hierarchy (co-mounted controllers such as cpu,cpuacct share one directory).
///
/// Never writes `release_agent` or `notify_on_release`: a writable release agent is
/// how CVE-2022-0492 escaped containers, and we have no use for release notifications.
public struct CgroupV1Driver: CgroupDriver {
    public var version: CgroupVersion { .v1 }
    /// Controller → the worker's own group in that controller's hierarchy,
    /// e.g. `["memory": "/sys/fs/cgroup/memory/user.slice", "cpu": "/sys/fs/cgroup/cpu,cpuacct/user.slice"]`.
    public let ownGroups: [String: String]
    let fs: any CgroupFilesystem

    static let cpuPeriod: UInt64 = 100_000

    /// Creates `dgrid/` in each hierarchy so `create` is mkdir plus the limit writes.
    public init(ownGroups: [String: String]) throws(CgroupError) {
        try self.init(ownGroups: ownGroups, fs: KernelCgroupFilesystem())
    }

    init(ownGroups: [String: String], fs: any CgroupFilesystem) throws(CgroupError) {
        self.ownGroups = ownGroups
        self.fs = fs
        for parent in Self.hierarchies(ownGroups).map({ $0 + "/dgrid" }) {
            do throws(CgroupErrno) {
                try CgroupTree.ensureDirectory(parent, fs: fs)
            } catch {
                throw .create(path: parent, errno: error.code)
            }
        }
    }

    public func create(name: String, limits: ResourceLimits) throws(CgroupError) -> SandboxCgroup {
        try CgroupName.validate(name)
        if limits.memoryBytes != nil && ownGroups["memory"] == nil { throw .missingController("memory") }
        if limits.cpus != nil && ownGroups["cpu"] == nil { throw .missingController("cpu") }
        if limits.pids != nil && ownGroups["pids"] == nil { throw .missingController("pids") }

        let group = CgroupV1Group(directories: Self.hierarchiesFor(limits, in: ownGroups).mapValues { $0 + "/dgrid/" + name }, fs: fs)
        do throws(CgroupError) {
            for dir in group.hierarchies { try makeGroup(dir) }
            if let bytes = limits.memoryBytes, let dir = group.directories["memory"] {
                try setMemoryLimit(bytes, in: dir)
            }
            if let cpus = limits.cpus, let dir = group.directories["cpu"] {
                try write("\(Self.cpuPeriod)", dir + "/cpu.cfs_period_us")
                try write("\(cpus.quotaMicroseconds(period: Self.cpuPeriod))", dir + "/cpu.cfs_quota_us")
            }
            if let pids = limits.pids, let dir = group.directories["pids"] {
                try write("\(pids)", dir + "/pids.max")
            }
        } catch {
            for dir in group.hierarchies { try? fs.removeDirectory(dir) }
            throw error
        }
        return group
    }

    @discardableResult
    public func removeStale(keeping keep: (String) -> Bool) -> [String] {
        var removed: [String] = []
        for name in groupNames().sorted() where !keep(name) {
            let directories = ownGroups.mapValues { $0 + "/dgrid/" + name }.filter { fs.exists($0.value) }
            if (try? CgroupV1Group(directories: directories, fs: fs).remove()) != nil {
                removed.append(name)
            }
        }
        return removed
    }

    /// Names under `dgrid/` in any hierarchy (a crash between two mkdirs leaves a partial set).
    func groupNames() -> Set<String> {
        var names: Set<String> = []
        for dir in Self.hierarchies(ownGroups) { names.formUnion(fs.subdirectories(of: dir + "/dgrid")) }
        return names
    }

    /// memsw (memory + swap) must never be below the memory limit. A new group starts
    /// unlimited, so the memory limit goes first; a reused group with a lower memsw
    /// refuses that with EINVAL, and then memsw goes first.
    private func setMemoryLimit(_ bytes: UInt64, in dir: String) throws(CgroupError) {
        let value = "\(bytes)"
        let limit = dir + "/memory.limit_in_bytes"
        let memsw = dir + "/memory.memsw.limit_in_bytes"
        // memsw exists only with swap accounting; equal to the limit it means no swap.
        if fs.exists(memsw) {
            var memswFirst = false
            do throws(CgroupErrno) {
                try fs.write(value, to: limit)
            } catch {
                guard error.code == EINVAL else { throw .write(path: limit, value: value, errno: error.code) }
                memswFirst = true
            }
            try write(value, memsw)
            if memswFirst { try write(value, limit) }
        } else {
            try write(value, limit)
        }
        // Best effort: keeps the group's pages out of swap where memsw is unavailable.
        try? fs.write("0", to: dir + "/memory.swappiness")
    }

    private func makeGroup(_ path: String) throws(CgroupError) {
        do throws(CgroupErrno) {
            try CgroupTree.ensureDirectory(path, fs: fs)
        } catch {
            guard error.code == ENOENT else { throw .create(path: path, errno: error.code) }
            // Someone removed the empty `dgrid/` since init; make it again once.
            do throws(CgroupErrno) {
                try CgroupTree.ensureDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]), fs: fs)
                try CgroupTree.ensureDirectory(path, fs: fs)
            } catch {
                throw .create(path: path, errno: error.code)
            }
        }
    }

    private func write(_ value: String, _ path: String) throws(CgroupError) {
        do throws(CgroupErrno) {
            try fs.write(value, to: path)
        } catch {
            throw .write(path: path, value: value, errno: error.code)
        }
    }

    /// The controllers a sandbox with these limits needs, and any co-mounted
    /// with them (cpu,cpuacct: one directory, accounting for free). Each v1
    /// hierarchy is a mkdir and an rmdir in the kernel on every start; the pid
    /// namespace already takes the whole tree down with pid 1 (no freezer
    /// needed to kill it) and rusage reports CPU time where cpuacct is not
    /// joined. The worker's stale-group sweep still looks in every hierarchy.
    static func hierarchiesFor(_ limits: ResourceLimits, in ownGroups: [String: String]) -> [String: String] {
        var needed: Set<String> = []
        if limits.memoryBytes != nil { needed.insert("memory") }
        if limits.cpus != nil { needed.insert("cpu") }
        if limits.pids != nil { needed.insert("pids") }
        if limits.freezable { needed.insert("freezer") }
        let chosen = Set(ownGroups.filter { needed.contains($0.key) }.values)
        return ownGroups.filter { chosen.contains($0.value) }
    }

    static func hierarchies(_ directories: [String: String]) -> [String] {
        Set(directories.values).sorted()
    }
}

/// One sandbox's v1 groups, one directory per hierarchy.
struct CgroupV1Group: SandboxCgroup {
    /// Controller → this sandbox's directory in that controller's hierarchy.
    let directories: [String: String]
    /// The distinct directories, sorted: co-mounted controllers appear once.
    let hierarchies: [String]
    let fs: any CgroupFilesystem

    init(directories: [String: String], fs: any CgroupFilesystem) {
        self.directories = directories
        self.hierarchies = CgroupV1Driver.hierarchies(directories)
        self.fs = fs
    }

    func add(pid: pid_t) throws(CgroupError) {
        for dir in hierarchies {
            do throws(CgroupErrno) {
                try fs.write("\(pid)", to: dir + "/cgroup.procs")
            } catch {
                throw .write(path: dir + "/cgroup.procs", value: "\(pid)", errno: error.code)
            }
        }
    }

    /// Each hierarchy's `tasks` file: pid 1, one thread, writes "0" to move
    /// itself. Unlike a pid written to cgroup.procs, that takes neither the
    /// global threadgroup lock nor its RCU grace period (~10 ms here per
    /// start, docs/ARCHITECTURE.md §3).
    func openJoinDescriptors() throws(CgroupError) -> [Int32] {
        var fds: [Int32] = []
        for dir in hierarchies {
            do throws(CgroupErrno) {
                fds.append(try fs.openForWriting(dir + "/tasks"))
            } catch {
                fds.forEach { close($0) }
                throw .write(path: dir + "/tasks", value: "0", errno: error.code)
            }
        }
        return fds
    }

    func stats() -> CgroupStats {
        let memory = directories["memory"]
        return CgroupStats(
            cpuNanoseconds: directories["cpuacct"].flatMap { CgroupText.number(fs.read($0 + "/cpuacct.usage")) },
            peakMemoryBytes: memory.flatMap { CgroupText.number(fs.read($0 + "/memory.max_usage_in_bytes")) },
            oomKilled: (memory.flatMap { CgroupText.value(of: "oom_kill", in: fs.read($0 + "/memory.oom_control")) } ?? 0) > 0,
            pidsLimitHit: (directories["pids"].flatMap { CgroupText.value(of: "max", in: fs.read($0 + "/pids.events")) } ?? 0) > 0
        )
    }

    /// v1 has no cgroup.kill. Freezing first makes the member list final: frozen
    /// tasks cannot fork, and cannot exit and have their pid reused before SIGKILL
    /// lands. The kill takes effect on thaw. Repeats until empty, within 2 s.
    func killAll() {
        let deadline = CgroupWait.deadline(after: CgroupWait.killTimeout)
        let freezer = directories["freezer"]
        while !members().isEmpty && !CgroupWait.passed(deadline) {
            if let freezer {
                try? fs.write("FROZEN", to: freezer + "/freezer.state")
                // A task stuck in the kernel can hold the group in FREEZING; kill anyway after a bit.
                _ = CgroupWait.until(min(deadline, CgroupWait.deadline(after: 200_000_000))) {
                    fs.read(freezer + "/freezer.state")?.trimmingWhitespace() == "FROZEN"
                }
            }
            for pid in members() { try? fs.kill(pid, SIGKILL) }
            if let freezer { try? fs.write("THAWED", to: freezer + "/freezer.state") }
            _ = CgroupWait.until(min(deadline, CgroupWait.deadline(after: 100_000_000))) { members().isEmpty }
        }
    }

    func freeze() -> Bool {
        guard let freezer = directories["freezer"], (try? fs.write("FROZEN", to: freezer + "/freezer.state")) != nil else { return false }
        // FREEZING until every task has stopped; a task stuck in the kernel can hold it there.
        let frozen = CgroupWait.until(CgroupWait.deadline(after: CgroupWait.killTimeout)) {
            fs.read(freezer + "/freezer.state")?.trimmingWhitespace() == "FROZEN"
        }
        if !frozen { thaw() }
        return frozen
    }

    func thaw() {
        if let freezer = directories["freezer"] { try? fs.write("THAWED", to: freezer + "/freezer.state") }
    }

    func remove() throws(CgroupError) {
        // Idempotent without an existence check: a missing group has no members and rmdir says ENOENT.
        killAll()
        let deadline = CgroupWait.deadline(after: CgroupWait.killTimeout)
        var firstError: CgroupError?
        for dir in hierarchies {
            do throws(CgroupError) {
                try CgroupTree.remove(dir, fs: fs, deadline: deadline)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }

    /// Everyone in any of the hierarchies: after a partial `add` a task may be in some only.
    private func members() -> [pid_t] {
        var pids: Set<pid_t> = []
        for dir in hierarchies { pids.formUnion(CgroupText.pids(fs.read(dir + "/cgroup.procs"))) }
        return pids.sorted()
    }
}
