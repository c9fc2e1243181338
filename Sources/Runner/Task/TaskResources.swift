/// What a task asks of the sandbox; nil means the worker's default.
public struct TaskResources: Equatable, Sendable {
    /// CPU quota in CPUs (1.5 = one and a half cores), > 0.
    public var cpus: Double?
    public var memoryBytes: UInt64?
    /// Most processes and threads in the task's cgroup, > 0.
    public var pids: Int?

    public init(cpus: Double? = nil, memoryBytes: UInt64? = nil, pids: Int? = nil) {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.pids = pids
    }

    public var isEmpty: Bool { cpus == nil && memoryBytes == nil && pids == nil }
}
