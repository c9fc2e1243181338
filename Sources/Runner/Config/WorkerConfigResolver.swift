import Sandbox

/// Turns flags, environment and the config file into the worker's effective
/// settings, each with where it came from. Precedence per setting (DESIGN §8):
/// flag, then environment (`DGRID_<KEY>`, then D-GRID's old name), then file,
/// then default. Pure: no file or process state is read here, so every rule
/// is unit-tested (Tests/RunnerTests/WorkerConfigResolverTests.swift).
public enum WorkerConfigResolver {
    /// What the defaults that depend on the machine are computed from.
    public struct Host: Sendable {
        public var cores: Int
        public var memoryBytes: UInt64
        /// `node_<hostname>`, computed by the caller.
        public var defaultNodeID: String

        public init(cores: Int, memoryBytes: UInt64, defaultNodeID: String) {
            self.cores = cores
            self.memoryBytes = memoryBytes
            self.defaultNodeID = defaultNodeID
        }
    }

    /// One value given on the command line: the key, its text and the flag as
    /// typed (for the source shown by `--print-config` and in errors).
    public struct Flag: Sendable {
        public var key: WorkerSettingKey
        public var text: String
        public var name: String

        public init(key: WorkerSettingKey, text: String, name: String) {
            self.key = key
            self.text = text
            self.name = name
        }

        /// `--set KEY=VALUE`, refused with the valid keys when KEY is unknown.
        public init(assignment: String) throws(WorkerConfigError) {
            let parts = assignment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).trimmingWhitespace()
            guard let key = WorkerSettingKey(rawValue: name) else { throw .unknownKey(key: name, source: .flag("--set")) }
            guard parts.count == 2 else {
                throw .invalid(key: key, source: .flag("--set"), problem: .badValue("no value; use --set \(name)=VALUE"))
            }
            self.init(key: key, text: String(parts[1]), name: "--set \(name)")
        }
    }

    public static func resolve(flags: [Flag], environment: [String: String], file: WorkerConfigFile?,
                               host: Host) throws(WorkerConfigError) -> WorkerConfig {
        if let file {
            for key in file.values.keys.sorted() where WorkerSettingKey(rawValue: key) == nil {
                throw .unknownKey(key: key, source: .file(file.path))
            }
        }
        var entries: [WorkerSettingKey: ResolvedSetting] = [:]
        for key in WorkerSettingKey.allCases {
            if let setting = try given(key, flags: flags, environment: environment, file: file) {
                entries[key] = setting
            }
        }
        // Defaults last: some depend on other effective values.
        for key in WorkerSettingKey.allCases where entries[key] == nil {
            entries[key] = ResolvedSetting(value: defaultValue(key, entries: entries, host: host), source: .defaultValue)
        }
        let config = WorkerConfig(entries: entries)
        try WorkerConfigConsistency.check(config)
        return config
    }

    /// The highest source's value. Every source that names the key is parsed,
    /// not only the winner: a bad value in the file is an error even while a
    /// flag hides it, or it bites the day the flag is dropped.
    private static func given(_ key: WorkerSettingKey, flags: [Flag], environment: [String: String],
                              file: WorkerConfigFile?) throws(WorkerConfigError) -> ResolvedSetting? {
        var found: [ResolvedSetting] = []
        // The last flag wins, as with any repeated option.
        for flag in flags.reversed() where flag.key == key {
            let source = SettingSource.flag(flag.name)
            found.append(ResolvedSetting(value: try parse(key, source) { () throws(WorkerSettingProblem) in try key.kind.parse(text: flag.text) },
                                         source: source))
        }
        // An empty variable counts as unset, as `VAR= dgrid worker` intends.
        for name in [key.environmentName] + key.legacyEnvironmentNames {
            guard let text = environment[name], !text.isEmpty else { continue }
            let source = SettingSource.environment(name)
            found.append(ResolvedSetting(value: try parse(key, source) { () throws(WorkerSettingProblem) in try key.kind.parse(text: text) },
                                         source: source))
        }
        if let file, let value = file.values[key.rawValue] {
            let source = SettingSource.file(file.path)
            found.append(ResolvedSetting(value: try parse(key, source) { () throws(WorkerSettingProblem) in try key.kind.parse(file: value) },
                                         source: source))
        }
        return found.first
    }

    private static func parse(_ key: WorkerSettingKey, _ source: SettingSource,
                              _ body: () throws(WorkerSettingProblem) -> WorkerSettingValue) throws(WorkerConfigError) -> WorkerSettingValue {
        do {
            return try body()
        } catch {
            throw .invalid(key: key, source: source, problem: error)
        }
    }

    /// The built-in defaults: the values the worker had before it read a config.
    static func defaultValue(_ key: WorkerSettingKey, entries: [WorkerSettingKey: ResolvedSetting], host: Host) -> WorkerSettingValue {
        switch key {
        case .nodeID: return .nodeID(host.defaultNodeID)
        case .slots:
            // Half the cores, never more than memory allows at the per-task default.
            let byCores = max(1, host.cores / 2)
            guard case .bytes(let memory) = (entries[.defaultMemory]?.value ?? defaultValue(.defaultMemory, entries: [:], host: host)),
                  memory.bytes > 0 else { return .count(byCores) }
            return .count(max(1, min(byCores, Int(clamping: host.memoryBytes / 2 / memory.bytes))))
        case .leaseSeconds:
            // Three heartbeats: one lost renewal does not lose the claims.
            guard case .seconds(let beat)? = entries[.heartbeatSeconds]?.value else { return .seconds(90) }
            return .seconds(max(1, 3 * beat))
        case .heartbeatSeconds: return .seconds(30)
        case .pollSeconds: return .seconds(10)
        case .pollCeilingSeconds: return .seconds(120)
        case .fleetPollSeconds: return .seconds(GridSettings.defaultFleetPollSeconds)
        case .foldIntervalSeconds: return .seconds(5)
        case .graceSeconds: return .seconds(30)
        case .shardCount: return .count(16)
        case .defaultImage:
            // Parsing a literal that is known good; the fallback is never taken.
            return (try? ImageReference(parsing: "dgrid/busybox:latest")).map(WorkerSettingValue.image) ?? .nodeID("")
        case .defaultMemory: return .bytes(ByteCount(bytes: 512 << 20))
        case .defaultCPUs: return .cpus(1)
        case .defaultPids: return .count(256)
        case .outputLimit: return .bytes(ByteCount(bytes: 10 * 1024))
        case .checkpointSize: return .bytes(ByteCount(bytes: 256 << 20))
        case .outputSize: return .bytes(ByteCount(bytes: 1 << 30))
        case .artifactDir: return .path("")
        case .artifactRegistry: return .repository(nil)
        case .maxCPUs: return .cpus(4)
        case .maxMemory: return .bytes(ByteCount(bytes: 8 << 30))
        case .maxPids: return .count(4096)
        case .maxTimeoutSeconds: return .count(86_400)
        case .maxFileSize: return .bytes(ByteCount(bytes: 256 * 1024))
        case .maxScriptSize: return .bytes(ByteCount(bytes: 64 * 1024))
        case .maxEnvEntries: return .count(64)
        case .maxDependencies: return .count(TaskLimits().maxDependencies)
        case .maxAttempts: return .count(3)
        case .compactAfterCommits: return .count(5_000)
        case .archiveAfterSeconds: return .seconds(0)
        case .selfCheckSeconds: return .seconds(30)
        case .minFreeDisk: return .bytes(ByteCount(bytes: 1 << 30))
        case .minFreeInodes: return .count(10_000)
        case .minAvailableMemory: return .bytes(ByteCount(bytes: 64 << 20))
        case .circuitFailures: return .count(5)
        case .circuitCeilingSeconds: return .seconds(120)
        case .backendAnswerSeconds: return .seconds(10)
        case .slotWatchdogSeconds: return .seconds(60)
        case .logLevel: return .logLevel(.info)
        // Off unless asked for: an open port is the operator's decision (docs/THREATS.md).
        case .metricsListen: return .listen(nil)
        case .webhookURL: return .webhook(nil)
        case .webhookSecretFile: return .path("")
        }
    }
}

/// Rules between settings: a default a task gets must be one the worker would
/// accept if the task asked for it, and so on.
enum WorkerConfigConsistency {
    static func check(_ config: WorkerConfig) throws(WorkerConfigError) {
        try atMost(.defaultMemory, config.defaultMemory.bytes, .maxMemory, config.maxMemory.bytes, config)
        try atMost(.defaultCPUs, config.defaultCPUs, .maxCPUs, config.maxCPUs, config)
        try atMost(.defaultPids, config.defaultPids, .maxPids, config.maxPids, config)
        try atMost(.maxScriptSize, config.maxScriptSize.bytes, .maxFileSize, config.maxFileSize.bytes, config)
        try atMost(.pollSeconds, config.pollSeconds, .pollCeilingSeconds, config.pollCeilingSeconds, config)
    }

    /// `small` must not exceed `large`; the error is reported on whichever of
    /// the two the operator set (the one not left at its default).
    private static func atMost<T: Comparable>(_ smallKey: WorkerSettingKey, _ small: T, _ largeKey: WorkerSettingKey, _ large: T,
                                              _ config: WorkerConfig) throws(WorkerConfigError) {
        guard small > large else { return }
        let smallSource = config.source(smallKey)
        let blamed = smallSource == .defaultValue ? largeKey : smallKey
        let text = { (key: WorkerSettingKey) in config.entries[key].map(\.value.description) ?? "?" }
        throw .inconsistent(key: blamed, source: config.source(blamed),
                            reason: "\(smallKey.rawValue) (\(text(smallKey))) is above \(largeKey.rawValue) (\(text(largeKey))); "
                                + "raise \(largeKey.rawValue) or lower \(smallKey.rawValue)")
    }
}
