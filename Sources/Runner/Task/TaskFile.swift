import Sandbox

/// A validated task file (docs/ARCHITECTURE.md §6): D-GRID's `task_id`, `script` and
/// `timeout_seconds`, plus dgrid's optional fields. Only `TaskParser.parse` makes
/// one from repository bytes, so every value here has passed its checks.
public struct TaskFile: Equatable, Sendable {
    /// Valid per `TaskParser.isValidTaskID`; safe in a path component and a ref name.
    public var taskID: String
    /// Run by `/bin/sh -c` in the sandbox; no NUL bytes.
    public var script: String
    public var timeoutSeconds: Int
    /// Allowlisted image name or digest; nil means the worker's default image.
    public var image: String?
    public var priority: TaskPriority
    public var resources: TaskResources
    public var env: [String: String]
    public var dependsOn: [String]
    /// ISO-8601, as written by the submitter; FIFO order within a priority.
    public var createdAt: String?
    public var submitter: String?
    /// Top-level fields dgrid does not know, sorted. Kept (see `unknownValues`) and
    /// reported rather than refused, so newer submitters still work with older workers.
    public var unknownFields: [String]
    /// Each unknown field's value as compact JSON, so `TaskParser.encode` writes the
    /// file back without losing them.
    public var unknownValues: [String: String]
    /// docs/ARCHITECTURE.md §10 `dependency_mode`; nil: `DependencyMode.default`.
    public var dependencyMode: DependencyMode?
    /// docs/ARCHITECTURE.md §11 `quorum`: how many nodes run the task and how many must agree.
    public var quorum: TaskQuorum?
    /// docs/ARCHITECTURE.md §6 `checkpointing`.
    public var checkpointing: TaskCheckpointing?
    /// How many attempts may end without a result (the worker died or hung
    /// running it) before the task is failed; nil: the worker's default
    /// (`AttemptBudget`, docs/ARCHITECTURE.md §6).
    public var maxAttempts: Int?
    /// The grid a signed task names (`GridID` text); nil when it names none.
    public var grid: String?
    /// ISO-8601; a signed task is refused after it.
    public var notAfter: String?

    public init(
        taskID: String, script: String, timeoutSeconds: Int, image: String? = nil,
        priority: TaskPriority = .normal, resources: TaskResources = TaskResources(),
        env: [String: String] = [:], dependsOn: [String] = [], createdAt: String? = nil,
        submitter: String? = nil, unknownFields: [String] = [], unknownValues: [String: String] = [:],
        dependencyMode: DependencyMode? = nil, quorum: TaskQuorum? = nil, checkpointing: TaskCheckpointing? = nil, maxAttempts: Int? = nil
    ) {
        self.taskID = taskID
        self.script = script
        self.timeoutSeconds = timeoutSeconds
        self.image = image
        self.priority = priority
        self.resources = resources
        self.env = env
        self.dependsOn = dependsOn
        self.createdAt = createdAt
        self.submitter = submitter
        self.unknownFields = unknownFields
        self.unknownValues = unknownValues
        self.dependencyMode = dependencyMode
        self.quorum = quorum
        self.checkpointing = checkpointing
        self.maxAttempts = maxAttempts
    }
}

extension TaskFile {
    /// `unknownFields` ready for a log line: names escaped and quoted, at most eight
    /// listed, since both names and count are chosen by whoever wrote the file.
    public var unknownFieldsDescription: String {
        let shown = unknownFields.prefix(8).map { UntrustedText.quoted($0, limit: 32) }.joined(separator: ", ")
        let more = unknownFields.count > 8 ? " and \(unknownFields.count - 8) more" : ""
        return shown + more
    }
}
