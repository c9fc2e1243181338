import Glibc
import SandboxSupport

/// Resource limits enforced on a sandbox's whole process tree through its cgroup.
public struct ResourceLimits: Sendable, Equatable {
    /// Hard memory limit in bytes; swap is disabled for the group.
    public var memoryBytes: UInt64?
    /// CPU quota in CPUs (1.5 = one and a half cores).
    public var cpus: CPUQuota?
    /// Maximum number of tasks (processes and threads) in the group.
    public var pids: Int?
    /// The group can be frozen (cgroup v1: it joins the freezer hierarchy too).
    public var freezable = false

    public init(memoryBytes: UInt64? = nil, cpus: CPUQuota? = nil, pids: Int? = nil) {
        self.memoryBytes = memoryBytes
        self.cpus = cpus
        self.pids = pids
    }

    public var isEmpty: Bool { memoryBytes == nil && cpus == nil && pids == nil && !freezable }
}

/// What the kernel accounted for a sandbox's group once it has finished.
public struct CgroupStats: Sendable, Equatable {
    public var cpuNanoseconds: UInt64?
    public var peakMemoryBytes: UInt64?
    public var oomKilled: Bool
    /// True when `pids.max` refused at least one fork.
    public var pidsLimitHit: Bool

    public init(cpuNanoseconds: UInt64? = nil, peakMemoryBytes: UInt64? = nil, oomKilled: Bool = false, pidsLimitHit: Bool = false) {
        self.cpuNanoseconds = cpuNanoseconds
        self.peakMemoryBytes = peakMemoryBytes
        self.oomKilled = oomKilled
        self.pidsLimitHit = pidsLimitHit
    }
}

/// One cgroup (v2) or one group per controller hierarchy (v1) for one sandbox.
public protocol SandboxCgroup: Sendable {
    /// Moves `pid` into the group (every controller). Called before the child is
    /// released, when `openJoinDescriptors()` gave nothing.
    func add(pid: pid_t) throws(CgroupError)
    /// Descriptors the sandbox's pid 1 writes "0" to, to move itself into the
    /// group (cgroup v1 `tasks` files, opened here so the kernel checks our
    /// credentials); empty when the parent must `add(pid:)` instead. A thread
    /// moving itself skips the global lock whose write side waits for an RCU
    /// grace period on every cgroup.procs write (docs/ARCHITECTURE.md §3).
    /// The caller closes them.
    func openJoinDescriptors() throws(CgroupError) -> [Int32]
    /// Reads CPU time, peak memory, OOM and pids events.
    func stats() -> CgroupStats
    /// Kills every process in the group (v2 `cgroup.kill`; v1 freeze, SIGKILL each, thaw).
    func killAll()
    /// Removes the group once it is empty, killing stragglers first; idempotent.
    func remove() throws(CgroupError)
    /// Stops every process of the group where it stands; true once the kernel
    /// says the whole group is frozen (within 2 s), false when it cannot be.
    func freeze() -> Bool
    /// Lets a frozen group run again.
    func thaw()
}

extension SandboxCgroup {
    public func openJoinDescriptors() throws(CgroupError) -> [Int32] { [] }
    public func freeze() -> Bool { false }
    public func thaw() {}
}

/// A cgroup implementation (v1 or v2) rooted at a directory that tests can point elsewhere.
public protocol CgroupDriver: Sendable {
    var version: CgroupVersion { get }
    /// Creates `dgrid/<name>` under the worker's own group and applies `limits`.
    func create(name: String, limits: ResourceLimits) throws(CgroupError) -> SandboxCgroup
    /// Removes `dgrid/*` groups a crashed run left behind (killing what is still in
    /// them), except those `keep` claims. Returns the names removed.
    @discardableResult
    func removeStale(keeping keep: (String) -> Bool) -> [String]
}

extension CgroupDriver {
    @discardableResult
    public func removeStale(keep: Set<String>) -> [String] {
        removeStale(keeping: { keep.contains($0) })
    }
}

public enum CgroupVersion: String, Sendable {
    case v1
    case v2
}

public enum CgroupError: Error, Equatable, CustomStringConvertible {
    /// No usable hierarchy: not mounted, or not writable by this user.
    case unavailable(reason: String)
    /// A controller the limits need is missing (e.g. pids on v1).
    case missingController(String)
    case write(path: String, value: String, errno: Int32)
    case create(path: String, errno: Int32)
    case remove(path: String, errno: Int32)
    /// cgroup v2 will not hand controllers to the children of a group that holds
    /// processes itself, and the worker sits in `group`.
    case noInternalProcesses(group: String)
    /// A group name that is not a plain `[A-Za-z0-9_-]` word (it becomes a directory name).
    case invalidName(String)

    public var description: String {
        switch self {
        case .unavailable(let reason):
            return "cgroups unavailable: \(reason)"
        case .missingController(let name):
            return "cgroup controller '\(name)' is not available on this host; run without that limit or enable the controller"
        case .write(let path, let value, let errno):
            return "cgroup: writing '\(value)' to \(path): \(String(cString: strerror(errno)))"
        case .create(let path, let errno):
            return "cgroup: creating \(path): \(String(cString: strerror(errno)))"
        case .remove(let path, let errno):
            return "cgroup: removing \(path): \(String(cString: strerror(errno)))"
        case .noInternalProcesses(let group):
            return "cgroup v2: \(group) holds processes, so it cannot enable memory, cpu and pids for child groups (the \"no internal processes\" rule); dgrid moves itself into a leaf only when it is alone there: run it alone in a delegated group (systemd Delegate=yes), or pass --no-cgroup-limits"
        case .invalidName(let name):
            return "cgroup: invalid group name '\(name)'; use 1-128 characters from A-Z a-z 0-9 _ -"
        }
    }
}
