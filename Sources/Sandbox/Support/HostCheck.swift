/// One finding of `dgrid doctor` (docs/ARCHITECTURE.md §12, "Doctor"): whether
/// this host can run dgrid workers, one aspect at a time. A value both halves
/// make — the kernel's checks in Sandbox, the grid's, the disk's and the
/// trust files' in Runner — and the CLI only renders. `fix` is one line an
/// operator can act on; nil when there is nothing to do.
public struct HostCheck: Sendable, Equatable, Codable {
    public let id: HostCheckID
    public let status: HostCheckStatus
    /// What was found, in one line (host paths allowed: this is the operator's own screen).
    public let detail: String
    public let fix: String?

    public init(_ id: HostCheckID, _ status: HostCheckStatus, _ detail: String, fix: String? = nil) {
        self.id = id
        self.status = status
        self.detail = detail
        self.fix = fix
    }

    enum CodingKeys: String, CodingKey {
        case id, status, detail, fix
    }

    /// `fix` is always present in JSON (null when there is nothing to do): one shape for every check.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(status, forKey: .status)
        try container.encode(detail, forKey: .detail)
        try container.encode(fix, forKey: .fix)
    }

    public static func pass(_ id: HostCheckID, _ detail: String) -> HostCheck { HostCheck(id, .pass, detail) }
    public static func warn(_ id: HostCheckID, _ detail: String, fix: String) -> HostCheck { HostCheck(id, .warn, detail, fix: fix) }
    public static func fail(_ id: HostCheckID, _ detail: String, fix: String) -> HostCheck { HostCheck(id, .fail, detail, fix: fix) }
}

/// How bad a finding is. Ordered: the worst one decides `dgrid doctor`'s verdict.
public enum HostCheckStatus: String, Sendable, Codable, Comparable, CaseIterable {
    /// Works as a worker needs it.
    case pass
    /// A worker runs, but something is degraded, unmeasured or about to fail.
    case warn
    /// A worker here would fail tasks or refuse to start.
    case fail

    private var rank: Int {
        switch self {
        case .pass: 0
        case .warn: 1
        case .fail: 2
        }
    }

    public static func < (lhs: HostCheckStatus, rhs: HostCheckStatus) -> Bool { lhs.rank < rhs.rank }
}

/// Every check `dgrid doctor` runs, in the order it prints them. The raw value
/// is the id in `--json` output: stable, for scripts and monitoring to key on.
public enum HostCheckID: String, Sendable, Codable, CaseIterable {
    case kernel
    case namespaceUser = "namespace.user"
    case namespacePID = "namespace.pid"
    case namespaceMount = "namespace.mount"
    case namespaceNet = "namespace.net"
    case namespaceUTS = "namespace.uts"
    case namespaceIPC = "namespace.ipc"
    case namespaceCgroup = "namespace.cgroup"
    case overlay
    case cgroups
    case seccomp
    case noNewPrivs = "no_new_privs"
    /// The whole spawn path, from clone to the task's exec, in one probe sandbox.
    case sandbox
    case subordinateIDs = "subordinate_ids"
    case workerConfig = "worker_config"
    case stateDirectory = "state_directory"
    case diskSpace = "disk.space"
    case diskInodes = "disk.inodes"
    case imageStore = "image_store"
    case defaultImage = "default_image"
    case trustDirectory = "trust.directory"
    case trustAllowedSigners = "trust.allowed_signers"
    case trustRevokedKeys = "trust.revoked_keys"
    case trustPolicy = "trust.policy"
    case trustOpenPGPKeyring = "trust.openpgp_keyring"
    case trustPins = "trust.pins"
    /// Whose results and heartbeats a fold here takes (docs/ARCHITECTURE.md §11).
    case trustWorkers = "trust.workers"
    /// This host's node key, which signs what its worker publishes.
    case nodeKey = "node.key"
    case gridRemote = "grid.remote"
    case gridClock = "grid.clock"
}

/// Where the kernel's and the system's files are read from: `/proc`, `/sys`
/// and `/etc` on a real host. A seam for tests only (they point it at a fake
/// tree to see a check fail on a kernel they cannot have); no flag or
/// variable of the CLI reaches it.
package struct HostPaths: Sendable, Equatable {
    package var proc: String
    package var sys: String
    package var etc: String

    package init(proc: String = "/proc", sys: String = "/sys", etc: String = "/etc") {
        self.proc = proc
        self.sys = sys
        self.etc = etc
    }

    package static let host = HostPaths()

    /// A small kernel or config file, trimmed; nil when it cannot be read.
    package func read(_ path: String) -> String? {
        readSmallFile(path, limit: 1 << 20).map { $0.trimmingWhitespace() }
    }
}
