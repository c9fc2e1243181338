/// The most a worker accepts from one task file. A task asking for more is
/// rejected, not clamped: the submitter learns at once instead of seeing a task
/// run with less than it asked for.
public struct TaskLimits: Sendable, Equatable {
    /// Task files are read whole into memory before parsing; bigger blobs are refused unread.
    public var maxFileBytes = 256 * 1024
    /// UTF-8 bytes of `script`.
    public var maxScriptBytes = 64 * 1024
    public var timeoutRange = 1...86_400
    public var maxCPUs: Double = 4
    public var maxMemoryBytes: UInt64 = 8 << 30
    public var maxPids = 4096
    /// Entries in `env`.
    public var maxEnvEntries = 64
    /// Entries in `depends_on`: enough for a merge over 10,000 shards
    /// (docs/ARCHITECTURE.md §10), whose file stays under `maxFileBytes`.
    public var maxDependencies = 10_000
    /// `max_attempts`: a task that kills its worker is tried at most this often.
    /// Beyond a handful, more attempts only burn more hosts.
    public var attemptRange = 1...20

    public init() {}
}
