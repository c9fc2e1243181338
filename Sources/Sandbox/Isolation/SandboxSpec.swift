import SandboxSupport
/// Everything needed to run one command in a sandbox. Built and validated by
/// the caller (CLI or Runner); the spawner turns it into the C shim's config.
public struct SandboxSpec: Sendable {
    /// The root filesystem: a directory, or an image's layers (an overlay;
    /// with `writableRootfs` a per-run upper in memory, at most
    /// `writableRootfsSize`, takes the writes).
    public var root: SandboxRoot
    /// argv; `command[0]` is looked up in the sandbox's PATH when it has no slash.
    public var command: [String]
    /// "KEY=VALUE" pairs; when it has no PATH, the standard one is added.
    public var environment: [String]
    /// Absolute path inside the sandbox.
    public var workingDirectory: String = "/"
    public var user: UserID = UserID(uid: 1000, gid: 1000)
    public var hostname: String = "dgrid"
    public var limits: ResourceLimits = ResourceLimits()
    /// Wall-clock limit in seconds; the whole tree is killed when it passes.
    public var timeoutSeconds: Double?
    /// Bytes of stdout and of stderr kept (each); the rest is drained and counted.
    public var outputLimit: Int = 10 * 1024
    public var writableRootfs: Bool = false
    /// The most an image run's writable root holds (its upper is a tmpfs, so
    /// written bytes are memory, charged to the task's cgroup).
    public var writableRootfsSize: ByteCount = ByteCount(bytes: 1 << 30)
    /// Size of the /tmp tmpfs.
    public var tmpSize: ByteCount = ByteCount(bytes: 64 << 20)
    /// The compiled seccomp program; nil runs unconfined (an explicit user choice).
    public var seccomp: SeccompFilter?
    public var mountSysfs: Bool = true
    /// When no cgroup can be created (rootless without delegation), run anyway and
    /// report the limits as not enforced, instead of refusing.
    public var allowWithoutCgroupLimits: Bool = false
    public var rlimits: [ResourceLimit] = ResourceLimit.defaults
    /// Destinations the task may reach (`EgressNetwork`); nil: none, its network
    /// namespace holds only loopback.
    public var egress: EgressGrant?
    /// Filled with the packets the egress filter dropped, when `egress` is set.
    public var egressReport: EgressReport?
    /// Directories mounted at `/<name>` (docs/ARCHITECTURE.md §10); an image run only.
    public var volumes: [SandboxVolume] = []
    /// Keeps the whole of stdout and stderr, past `outputLimit` too (docs/ARCHITECTURE.md §10).
    public var outputSpool: OutputSpool?
    /// Shown every stdout line that starts with its prefix (a task's `::progress`).
    public var stdoutWatcher: OutputLineWatcher?
    /// Lets the caller freeze the task while it runs (a consistent checkpoint,
    /// docs/ARCHITECTURE.md §10); the sandbox then has a cgroup with a freezer.
    public var freezer: SandboxFreezer?
    /// Where the kernel refuses an image's overlay, run from a merged copy of
    /// its layers instead (docs/ARCHITECTURE.md §5). Off for `dgrid doctor`'s
    /// probe, which must see the refusal rather than work around it.
    public var overlayFallback: Bool = true

    public init(root: SandboxRoot, command: [String], environment: [String] = []) {
        self.root = root
        self.command = command
        self.environment = environment
    }

    /// A run from a root filesystem directory (`--rootfs`).
    public init(rootfs: String, command: [String], environment: [String] = []) {
        self.init(root: .directory(rootfs), command: command, environment: environment)
    }
}

/// One setrlimit applied in the sandbox before the task starts.
public struct ResourceLimit: Sendable, Hashable {
    public let resource: Int32
    public let soft: UInt64
    public let hard: UInt64

    public init(resource: Int32, soft: UInt64, hard: UInt64) {
        self.resource = resource
        self.soft = soft
        self.hard = hard
    }

    /// No core dumps, a sane descriptor limit, no real-time priority.
    public static let defaults: [ResourceLimit] = [
        ResourceLimit(resource: 4 /* RLIMIT_CORE */, soft: 0, hard: 0),
        ResourceLimit(resource: 7 /* RLIMIT_NOFILE */, soft: 1024, hard: 4096),
        ResourceLimit(resource: 14 /* RLIMIT_RTPRIO */, soft: 0, hard: 0),
    ]
}
