import Logging
import Sandbox

/// The worker's effective settings, each with its source
/// (`WorkerConfigResolver.resolve` makes one). Typed accessors for the code
/// that uses them; `apply(to:)` hands them to the grid.
public struct WorkerConfig: Sendable, Equatable {
    public let entries: [WorkerSettingKey: ResolvedSetting]

    public func source(_ key: WorkerSettingKey) -> SettingSource { entries[key]?.source ?? .defaultValue }

    // The resolver fills every key with a value of the key's kind, so the
    // fallbacks below are never taken; they keep these accessors total.
    private func count(_ key: WorkerSettingKey) -> Int {
        if case .count(let value)? = entries[key]?.value { return value }
        return 0
    }
    private func seconds(_ key: WorkerSettingKey) -> Double {
        if case .seconds(let value)? = entries[key]?.value { return value }
        return 0
    }
    private func bytes(_ key: WorkerSettingKey) -> ByteCount {
        if case .bytes(let value)? = entries[key]?.value { return value }
        return ByteCount(bytes: 0)
    }
    private func cpus(_ key: WorkerSettingKey) -> Double {
        if case .cpus(let value)? = entries[key]?.value { return value }
        return 0
    }

    public var nodeID: String {
        if case .nodeID(let value)? = entries[.nodeID]?.value { return value }
        return ""
    }
    public var slots: Int { count(.slots) }
    public var leaseSeconds: Double { seconds(.leaseSeconds) }
    public var heartbeatSeconds: Double { seconds(.heartbeatSeconds) }
    public var pollSeconds: Double { seconds(.pollSeconds) }
    public var pollCeilingSeconds: Double { seconds(.pollCeilingSeconds) }
    public var foldIntervalSeconds: Double { seconds(.foldIntervalSeconds) }
    public var graceSeconds: Double { seconds(.graceSeconds) }
    public var shardCount: Int { count(.shardCount) }
    public var defaultImage: ImageReference? {
        if case .image(let value)? = entries[.defaultImage]?.value { return value }
        return nil
    }
    public var defaultMemory: ByteCount { bytes(.defaultMemory) }
    public var defaultCPUs: Double { cpus(.defaultCPUs) }
    public var defaultPids: Int { count(.defaultPids) }
    public var outputLimit: ByteCount { bytes(.outputLimit) }
    public var checkpointSize: ByteCount { bytes(.checkpointSize) }
    public var outputSize: ByteCount { bytes(.outputSize) }
    /// nil: no directory store.
    public var artifactDirectory: String? {
        if case .path(let path)? = entries[.artifactDir]?.value, !path.isEmpty { return path }
        return nil
    }
    /// nil: no registry store.
    public var artifactRegistry: ArtifactRepository? {
        if case .repository(let repository)? = entries[.artifactRegistry]?.value { return repository }
        return nil
    }
    /// nil: no metrics listener.
    public var metricsListen: ListenAddress? {
        if case .listen(let address)? = entries[.metricsListen]?.value { return address }
        return nil
    }
    /// nil: no webhook.
    public var webhookURL: WebhookURL? {
        if case .webhook(let url)? = entries[.webhookURL]?.value { return url }
        return nil
    }
    /// nil: the secret comes from `$DGRID_WEBHOOK_SECRET`, if anywhere.
    public var webhookSecretFile: String? {
        if case .path(let path)? = entries[.webhookSecretFile]?.value, !path.isEmpty { return path }
        return nil
    }
    public var maxCPUs: Double { cpus(.maxCPUs) }
    public var maxMemory: ByteCount { bytes(.maxMemory) }
    public var maxPids: Int { count(.maxPids) }
    public var maxTimeoutSeconds: Int { count(.maxTimeoutSeconds) }
    public var maxFileSize: ByteCount { bytes(.maxFileSize) }
    public var maxScriptSize: ByteCount { bytes(.maxScriptSize) }
    public var logLevel: Logger.Level {
        if case .logLevel(let value)? = entries[.logLevel]?.value { return value }
        return .info
    }

    /// The worker's maxima: task files asking for more are rejected.
    public var taskLimits: TaskLimits {
        var limits = TaskLimits()
        limits.maxFileBytes = Int(clamping: maxFileSize.bytes)
        limits.maxScriptBytes = Int(clamping: maxScriptSize.bytes)
        limits.timeoutRange = 1...maxTimeoutSeconds
        limits.maxCPUs = maxCPUs
        limits.maxMemoryBytes = maxMemory.bytes
        limits.maxPids = maxPids
        limits.maxEnvEntries = count(.maxEnvEntries)
        limits.maxDependencies = count(.maxDependencies)
        return limits
    }

    /// Everything but the node id (which `GridSettings` is made with) and the
    /// grace and log level (which the CLI uses before and after the worker).
    public func apply(to settings: inout GridSettings) {
        settings.slots = slots
        settings.defaultMaxAttempts = count(.maxAttempts)
        settings.compactAfterCommits = count(.compactAfterCommits)
        settings.archiveAfterSeconds = seconds(.archiveAfterSeconds)
        settings.selfCheckSeconds = seconds(.selfCheckSeconds)
        settings.minimumFreeDisk = bytes(.minFreeDisk)
        settings.minimumFreeInodes = UInt64(count(.minFreeInodes))
        settings.minimumAvailableMemory = bytes(.minAvailableMemory)
        settings.circuitFailures = count(.circuitFailures)
        settings.circuitCeilingSeconds = seconds(.circuitCeilingSeconds)
        settings.backendAnswerSeconds = seconds(.backendAnswerSeconds)
        settings.slotWatchdogSeconds = seconds(.slotWatchdogSeconds)
        settings.leaseSeconds = leaseSeconds
        settings.heartbeatSeconds = heartbeatSeconds
        settings.pollSeconds = pollSeconds
        settings.pollCeilingSeconds = pollCeilingSeconds
        settings.fleetPollSeconds = seconds(.fleetPollSeconds)
        settings.foldIntervalSeconds = foldIntervalSeconds
        if settings.shardCount != shardCount {
            settings.shardCount = shardCount
            settings.ownShards = GridSettings.defaultShards(nodeID: settings.nodeID, shardCount: shardCount)
        }
        if let defaultImage { settings.defaultImage = defaultImage.description }
        settings.defaultMemoryBytes = defaultMemory.bytes
        settings.defaultCPUs = defaultCPUs
        settings.defaultPids = defaultPids
        settings.outputLimit = Int(clamping: outputLimit.bytes)
        settings.checkpointSize = checkpointSize
        settings.outputSize = outputSize
        settings.artifactDirectory = artifactDirectory
        settings.artifactRegistry = artifactRegistry
        settings.limits = taskLimits
    }
}
