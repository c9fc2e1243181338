import Foundation
import Sandbox

/// What a worker (or `submit`, `status`, `fold`) needs to reach one grid.
/// A worker's values come from `WorkerConfig.apply(to:)` (flags, environment,
/// worker.toml, defaults: docs/ARCHITECTURE.md §7, "Worker settings").
public struct GridSettings: Sendable {
    /// The grid repository: file://, git://, http(s)://, ssh:// or a local path.
    public var repository: String
    public var nodeID: String
    /// Parallel task slots (`MAX_PARALLEL_TASKS`).
    public var slots: Int = 1
    /// How long a silent worker keeps its claims (default 3× the heartbeat).
    public var leaseSeconds: Double = 90
    /// How often running tasks' leases and the node record are renewed (`HEARTBEAT_INTERVAL`).
    public var heartbeatSeconds: Double = 30
    /// Base polling interval (`PULL_INTERVAL`); idle workers back off ×1.5 up to `pollCeilingSeconds`.
    public var pollSeconds: Double = 10
    public var pollCeilingSeconds: Double = 120
    /// The fleet's idle listings, spread (docs/ARCHITECTURE.md §11): an idle worker lists at most every
    /// (nodes on the grid × this) seconds, so the whole fleet makes about 1/this listings a second however
    /// many workers it has — a hosted repository's read budget (15/s on GitHub) holds at any size. 0: off.
    public var fleetPollSeconds: Double = Self.defaultFleetPollSeconds
    public static let defaultFleetPollSeconds = 0.1

    /// The least an idle slot waits between listings on a grid of `nodes` nodes: nodes × slots ×
    /// `fleetPollSeconds`, so a fleet of N workers with S slots each lists about 1/fleetPollSeconds
    /// times a second in all. Node refs stay after their workers stop, so the count errs high:
    /// idle polling may be slower than the budget needs, never faster.
    func idleListingFloor(nodes: Int) -> Double {
        Double(max(nodes, 1)) * Double(max(slots, 1)) * fleetPollSeconds
    }
    /// At most one fold per this many seconds from one worker.
    public var foldIntervalSeconds: Double = 5
    /// Shards of the queue; a worker prefers `ownShards` and steals from the rest.
    public var shardCount: Int = 16
    /// Default: a quarter of the shards, starting where the node id hashes,
    /// so workers prefer different parts of the queue.
    public var ownShards: Set<Int> = []
    /// The image a task runs in when it names none: the embedded default.
    public var defaultImage: String = "dgrid/busybox:latest"
    /// Attempts a task may end without a result when it names no `max_attempts` (`AttemptBudget`).
    public var defaultMaxAttempts: Int = 3
    /// The fold-lease holder compacts main's history once it has this many commits (docs/ARCHITECTURE.md §10); 0: never.
    public var compactAfterCommits: Int = 5_000
    /// The fold-lease holder archives records older than this (docs/ARCHITECTURE.md §10); 0: never (`dgrid archive` by hand).
    public var archiveAfterSeconds: Double = 0
    /// After a host fault, the first self-check waits this long, doubling up to the ceiling (`WorkerHealth`).
    public var healthCheckSeconds: Double = 5
    public var healthCheckCeilingSeconds: Double = 300
    /// Consecutive Git network failures that open the circuit (`GitCircuitBreaker`), and the cap on its backoff.
    public var circuitFailures: Int = 5
    public var circuitCeilingSeconds: Double = 120
    /// With several backends, how long the authority may stay silent on a connection before the
    /// step moves to the next backend (`GitLedger.answerSeconds`): a server that accepts and then
    /// says nothing would otherwise hold the fleet for a deadline per failure of the streak.
    public var backendAnswerSeconds: Double = 10
    /// How long a sandbox may outlive its timeout before the slot watchdog kills it, and
    /// its slot is replaced that long after the kill if it still runs (`SlotWatchdog`); 0: no watchdog.
    public var slotWatchdogSeconds: Double = 60
    /// Periodic self-checks (`WorkerSelfCheck`): how often, and the floors below which this host stops claiming.
    public var selfCheckSeconds: Double = 30
    public var minimumFreeDisk = ByteCount(bytes: 1 << 30)
    public var minimumFreeInodes: UInt64 = 10_000
    public var minimumAvailableMemory = ByteCount(bytes: 64 << 20)
    /// The worker's maxima; task requests above them are refused.
    public var limits: TaskLimits = TaskLimits()
    /// Limits a task gets when it asks for none (`DOCKER_MEMORY`, `DOCKER_CPUS`).
    public var defaultMemoryBytes: UInt64? = 512 << 20
    public var defaultCPUs: Double? = 1
    public var defaultPids: Int? = 256
    public var outputLimit: Int = 10 * 1024
    /// The most a task's `/checkpoint` holds (docs/ARCHITECTURE.md §10): a tmpfs of this size.
    public var checkpointSize = ByteCount(bytes: 256 << 20)
    /// The most a task's `/output` holds (docs/ARCHITECTURE.md §10): a tmpfs of this size, memory while it is written.
    public var outputSize = ByteCount(bytes: 1 << 30)
    /// A directory store for artifacts too large for Git (one-host grids): `<dir>/sha256/<hex>`; nil: none.
    public var artifactDirectory: String?
    /// The registry store for artifacts too large for Git (docs/ARCHITECTURE.md §10); it wins
    /// over the directory store. Also the only registry `/inputs` fetches artifacts from.
    public var artifactRegistry: ArtifactRepository?
    /// `dgrid-registry`, which pushes and fetches registry artifacts for this process
    /// (the worker links no HTTP stack): beside this executable unless set.
    public var registryHelper: String = SiblingPath.beside(SiblingPath.registryHelper)
    /// Rootless without a delegated cgroup (`--no-cgroup-limits`): run tasks
    /// anyway, with memory, CPU and pids limits not enforced and said so in
    /// the log (docs/THREATS.md, T8). Off: such a worker fails every task.
    public var runWithoutCgroupLimits = false
    public var credentials: GitCredentials = .none
    /// Further copies of the grid, in order (`--repo A --repo B`, docs/ARCHITECTURE.md §11 "Several
    /// backends"): the first healthy of `repository` and these is the authority for claims; the
    /// fold-lease holder keeps the others' main in step and brings back what was written on them.
    public var backups: [GridBackup] = []
    /// For ssh:// grids: the known_hosts file the host key must be in (nil:
    /// `$DGRID_SSH_KNOWN_HOSTS`, else `~/.ssh/known_hosts`).
    public var knownHostsPath: String?
    /// How long each Git listing, fetch and push may take in all (`GitDeadlines`).
    public var gitDeadlines = GitDeadlines()
    /// Told how each of those ended, on every ledger of the connection (the worker's metrics,
    /// docs/ARCHITECTURE.md §12); nil: nobody.
    public var gitObserver: GitOperationObserver?
    public var state: StateDirectory

    public init(repository: String, nodeID: String, state: StateDirectory) {
        self.repository = repository
        self.nodeID = nodeID
        self.state = state
        ownShards = Self.defaultShards(nodeID: nodeID, shardCount: shardCount)
    }

    static func defaultShards(nodeID: String, shardCount: Int) -> Set<Int> {
        let first = ShardPolicy.shard(of: nodeID, count: shardCount)
        return Set((0..<max(1, shardCount / 4)).map { (first + $0) % max(1, shardCount) })
    }

    /// `$DGRID_HOME/grids/<hash of the URL>`: one bare mirror per grid.
    /// This repository's name under `grids/`: its URL hashed, so any URL is a safe name.
    private var repositoryKey: String {
        var hasher = DigestHasher()
        hasher.update(Array(repository.utf8))
        return String(hasher.finalize().hex.prefix(16))
    }

    /// Where this host pins the grid's id (`GridPin`), beside the mirror.
    public func gridPinPath() throws(GridError) -> String {
        do {
            return try state.directory("grids") + "/" + repositoryKey + ".grid-id"
        } catch {
            throw .local("cannot create the grids directory: \(error)")
        }
    }

    public func policySerialPinPath() throws(GridError) -> String {
        do {
            return try state.directory("grids") + "/" + repositoryKey + ".policy-serial"
        } catch {
            throw .local("cannot create the grids directory: \(error)")
        }
    }

    public func mirrorPath() throws(GridError) -> String {
        do {
            return try state.directory("grids/" + repositoryKey)
        } catch {
            throw .local("cannot create the grid mirror directory: \(error)")
        }
    }
}
