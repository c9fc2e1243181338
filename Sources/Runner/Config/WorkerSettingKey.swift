/// Every setting a worker reads from flags, environment or its config file
/// (docs/worker.toml.example lists them with their defaults). The raw value is
/// the key in `worker.toml`; the environment name is `DGRID_` + the key in
/// upper case, so an operator never has to look a name up.
public enum WorkerSettingKey: String, CaseIterable, Sendable, Hashable {
    case nodeID = "node_id"
    case slots
    case leaseSeconds = "lease_seconds"
    case heartbeatSeconds = "heartbeat_seconds"
    case pollSeconds = "poll_seconds"
    case pollCeilingSeconds = "poll_ceiling_seconds"
    case fleetPollSeconds = "fleet_poll_seconds"
    case foldIntervalSeconds = "fold_interval_seconds"
    case graceSeconds = "grace_seconds"
    case shardCount = "shard_count"
    case defaultImage = "default_image"
    case defaultMemory = "default_memory"
    case defaultCPUs = "default_cpus"
    case defaultPids = "default_pids"
    case outputLimit = "output_limit"
    case checkpointSize = "checkpoint_size"
    case outputSize = "output_size"
    case artifactDir = "artifact_dir"
    case artifactRegistry = "artifact_registry"
    case maxCPUs = "max_cpus"
    case maxMemory = "max_memory"
    case maxPids = "max_pids"
    case maxTimeoutSeconds = "max_timeout_seconds"
    case maxFileSize = "max_file_size"
    case maxScriptSize = "max_script_size"
    case maxEnvEntries = "max_env_entries"
    case maxDependencies = "max_dependencies"
    case maxAttempts = "max_attempts"
    case compactAfterCommits = "compact_after_commits"
    case archiveAfterSeconds = "archive_after_seconds"
    case selfCheckSeconds = "self_check_seconds"
    case minFreeDisk = "min_free_disk"
    case minFreeInodes = "min_free_inodes"
    case minAvailableMemory = "min_available_memory"
    case circuitFailures = "circuit_failures"
    case circuitCeilingSeconds = "circuit_ceiling_seconds"
    case backendAnswerSeconds = "backend_answer_seconds"
    case slotWatchdogSeconds = "slot_watchdog_seconds"
    case logLevel = "log_level"
    case metricsListen = "metrics_listen"
    case webhookURL = "webhook_url"
    case webhookSecretFile = "webhook_secret_file"

    /// `DGRID_MAX_MEMORY` for `max_memory`.
    public var environmentName: String { "DGRID_" + rawValue.uppercased() }

    /// D-GRID's names (DESIGN §8), still read so existing deployments keep
    /// working; the `DGRID_` name wins when both are set.
    public var legacyEnvironmentNames: [String] {
        switch self {
        case .nodeID: ["NODE_ID"]
        case .slots: ["MAX_PARALLEL_TASKS"]
        case .heartbeatSeconds: ["HEARTBEAT_INTERVAL"]
        case .pollSeconds: ["PULL_INTERVAL"]
        case .defaultMemory: ["DOCKER_MEMORY"]
        case .defaultCPUs: ["DOCKER_CPUS"]
        case .logLevel: ["LOG_LEVEL"]
        default: []
        }
    }

    /// What the value is and the range it must fall in.
    public var kind: WorkerSettingKind {
        switch self {
        case .nodeID: .nodeID
        case .slots: .count(1...256)
        case .leaseSeconds: .seconds(1...86_400)
        case .heartbeatSeconds: .seconds(0.1...3_600)
        case .pollSeconds: .seconds(0.05...3_600)
        case .pollCeilingSeconds: .seconds(0.05...86_400)
        case .fleetPollSeconds: .seconds(0...60)
        case .foldIntervalSeconds: .seconds(0...3_600)
        case .graceSeconds: .seconds(0...3_600)
        case .shardCount: .count(1...4_096)
        case .defaultImage: .image
        case .defaultMemory, .maxMemory: .bytes(ByteCountRange.megabyte...ByteCountRange.maxMemory)
        case .defaultCPUs, .maxCPUs: .cpus(0.01...4_096)
        case .defaultPids, .maxPids: .count(1...4_194_304)
        // The sandbox keeps captured output in memory: at most 1 GiB (SandboxRunOptions).
        case .outputLimit: .bytes(1...(1 << 30))
        case .checkpointSize: .bytes((1 << 20)...(64 << 30))
        case .outputSize: .bytes((1 << 20)...(64 << 30))
        case .artifactDir: .path
        case .artifactRegistry: .artifactRepository
        case .maxTimeoutSeconds: .count(1...31_536_000)
        // Task files are read whole into memory before parsing.
        case .maxFileSize: .bytes(1_024...(64 << 20))
        case .maxScriptSize: .bytes(1...(64 << 20))
        case .maxEnvEntries: .count(0...4_096)
        case .maxDependencies: .count(0...65_536)
        case .maxAttempts: .count(1...20)  // TaskLimits.attemptRange
        case .compactAfterCommits: .count(0...100_000_000)
        case .archiveAfterSeconds: .seconds(0...3_153_600_000)
        case .selfCheckSeconds: .seconds(0...86_400)
        case .minFreeDisk, .minAvailableMemory: .bytes(0...(1 << 44))
        case .minFreeInodes: .count(0...1_000_000_000)
        case .circuitFailures: .count(1...1_000)
        case .circuitCeilingSeconds: .seconds(1...86_400)
        case .backendAnswerSeconds: .seconds(0.1...3_600)
        case .slotWatchdogSeconds: .seconds(0...86_400)
        case .logLevel: .logLevel
        case .metricsListen: .listenAddress
        case .webhookURL: .webhookURL
        case .webhookSecretFile: .path
        }
    }

    /// Every key, in the order of docs/worker.toml.example, for error messages.
    public static var validKeyList: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

enum ByteCountRange {
    static let megabyte: UInt64 = 1 << 20
    static let maxMemory: UInt64 = 1 << 44
}
