import Sandbox

/// Reads and checks each field of a task file's top-level object. One method per
/// field, each throwing a rejection that names the field and what to do.
struct TaskFieldReader {
    let members: [String: LedgerJSON.Value]
    let limits: TaskLimits

    static let knownFields: Set<String> = [
        "task_id", "script", "timeout_seconds", "image", "priority", "resources", "env",
        "depends_on", "dependency_mode", "quorum", "checkpointing", "created_at", "submitter",
        "max_attempts", "grid", "not_after",
    ]

    func task() throws(TaskRejection) -> TaskFile {
        let taskID = try self.taskID()
        var task = TaskFile(taskID: taskID, script: try script(), timeoutSeconds: try timeout())
        task.image = try image()
        task.priority = try priority()
        task.resources = try resources()
        task.env = try env()
        task.dependsOn = try dependsOn(taskID: taskID)
        task.createdAt = try createdAt()
        task.submitter = try shortText("submitter", maxBytes: 128)
        task.dependencyMode = try dependencyMode()
        task.quorum = try quorum()
        task.checkpointing = try checkpointing()
        task.maxAttempts = try maxAttempts()
        task.grid = try grid()
        task.notAfter = try notAfter()
        let unknown = members.keys.filter { !Self.knownFields.contains($0) }
        task.unknownFields = unknown.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        task.unknownValues = Dictionary(uniqueKeysWithValues: unknown.compactMap { name in
            members[name].map { (name, LedgerJSON.compact($0)) }
        })
        return task
    }

    // MARK: required

    private func taskID() throws(TaskRejection) -> String {
        let id = try requiredString("task_id")
        guard TaskParser.isValidTaskID(id) else {
            throw .field("task_id", "\(UntrustedText.quoted(id)) is not a valid task id (\(TaskIdentifier.rule))")
        }
        return id
    }

    private func script() throws(TaskRejection) -> String {
        let script = try requiredString("script")
        let size = script.utf8.count
        guard size > 0 else { throw .field("script", "empty; give the shell commands to run") }
        guard size <= limits.maxScriptBytes else {
            throw .field("script", "\(size) bytes, over the limit of \(limits.maxScriptBytes); ship a larger program in the image instead")
        }
        // execve takes C strings: a NUL would silently cut the script short.
        guard !script.utf8.contains(0) else { throw .field("script", "contains a NUL byte") }
        return script
    }

    private func timeout() throws(TaskRejection) -> Int {
        guard let value = members["timeout_seconds"], value != .null else {
            throw .field("timeout_seconds", "missing (required, whole seconds)")
        }
        guard case .number(let number) = value, let seconds = number.integer else {
            throw .field("timeout_seconds", "expected an integer number of seconds, found \(value.kind)")
        }
        guard seconds >= Int64(limits.timeoutRange.lowerBound), seconds <= Int64(limits.timeoutRange.upperBound) else {
            throw .field("timeout_seconds", "\(seconds) is outside \(limits.timeoutRange.lowerBound)...\(limits.timeoutRange.upperBound)")
        }
        return Int(seconds)
    }

    // MARK: optional

    private func image() throws(TaskRejection) -> String? {
        guard let image = try optionalString("image") else { return nil }
        // Names and digests are short, printable and without spaces; the allowlist
        // decides whether the image may run.
        guard !image.isEmpty, image.utf8.count <= 256,
              image.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw .field("image", "\(UntrustedText.quoted(image)) is not an image name or digest")
        }
        return image
    }

    private func priority() throws(TaskRejection) -> TaskPriority {
        guard let text = try optionalString("priority") else { return .normal }
        guard let priority = TaskPriority(rawValue: text) else {
            throw .field("priority", "\(UntrustedText.quoted(text)) is not one of critical, high, normal, low")
        }
        return priority
    }

    private func resources() throws(TaskRejection) -> TaskResources {
        guard let value = members["resources"], value != .null else { return TaskResources() }
        guard case .object(let fields) = value else {
            throw .field("resources", "expected an object {cpus, memory, pids}, found \(value.kind)")
        }
        // Unknown resources are refused, not kept: a task asking for "gpus" must not
        // run quietly without them.
        if let unknown = fields.keys.filter({ !["cpus", "memory", "pids"].contains($0) }).min() {
            throw .field("resources.\(UntrustedText.quoted(unknown, limit: 32))", "unknown resource (known: cpus, memory, pids)")
        }
        var resources = TaskResources()
        resources.cpus = try cpus(fields["cpus"])
        resources.memoryBytes = try memory(fields["memory"])
        resources.pids = try pids(fields["pids"])
        return resources
    }

    private func cpus(_ value: LedgerJSON.Value?) throws(TaskRejection) -> Double? {
        guard let value, value != .null else { return nil }
        guard case .number(let number) = value else {
            throw .field("resources.cpus", "expected a number of CPUs like 1.5, found \(value.kind)")
        }
        let cpus = number.double
        guard cpus.isFinite, cpus > 0 else { throw .field("resources.cpus", "\(number.literal) must be above 0") }
        guard cpus <= limits.maxCPUs else {
            throw .field("resources.cpus", "\(number.literal) is above this worker's limit of \(limits.maxCPUs)")
        }
        return cpus
    }

    private func memory(_ value: LedgerJSON.Value?) throws(TaskRejection) -> UInt64? {
        guard let value, value != .null else { return nil }
        let bytes: UInt64?
        switch value {
        case .string(let text): bytes = TaskMemory.bytes(text)
        case .number(let number): bytes = number.unsigned
        default:
            throw .field("resources.memory", "expected a size like \"256m\" or a number of bytes, found \(value.kind)")
        }
        guard let bytes else {
            let shown = if case .string(let text) = value { UntrustedText.quoted(text) } else { "number" }
            throw .field("resources.memory", "\(shown) is not a size; use bytes or a number with k, m, g or t, e.g. \"256m\"")
        }
        guard bytes > 0 else { throw .field("resources.memory", "must be above 0") }
        guard bytes <= limits.maxMemoryBytes else {
            throw .field("resources.memory", "\(bytes) bytes is above this worker's limit of \(limits.maxMemoryBytes)")
        }
        return bytes
    }

    private func pids(_ value: LedgerJSON.Value?) throws(TaskRejection) -> Int? {
        guard let value, value != .null else { return nil }
        guard case .number(let number) = value, let pids = number.integer else {
            throw .field("resources.pids", "expected an integer, found \(value.kind)")
        }
        guard pids > 0 else { throw .field("resources.pids", "\(pids) must be above 0") }
        guard pids <= Int64(limits.maxPids) else {
            throw .field("resources.pids", "\(pids) is above this worker's limit of \(limits.maxPids)")
        }
        return Int(pids)
    }

    private func env() throws(TaskRejection) -> [String: String] {
        guard let value = members["env"], value != .null else { return [:] }
        guard case .object(let entries) = value else {
            throw .field("env", "expected an object of NAME: \"value\" strings, found \(value.kind)")
        }
        guard entries.count <= limits.maxEnvEntries else {
            throw .field("env", "\(entries.count) variables, over the limit of \(limits.maxEnvEntries)")
        }
        var env: [String: String] = [:]
        // Sorted, so the same bad file always gives the same reason.
        for name in entries.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let field = "env.\(UntrustedText.quoted(name, limit: 32))"
            guard Self.isEnvName(name) else {
                throw .field(field, "not a variable name (letters, digits and _, not starting with a digit)")
            }
            guard case .string(let text)? = entries[name] else {
                throw .field(field, "expected a string value, found \(entries[name]?.kind ?? "nothing")")
            }
            guard !text.utf8.contains(0) else { throw .field(field, "value contains a NUL byte") }
            env[name] = text
        }
        return env
    }

    private func dependsOn(taskID: String) throws(TaskRejection) -> [String] {
        guard let value = members["depends_on"], value != .null else { return [] }
        guard case .array(let elements) = value else {
            throw .field("depends_on", "expected an array of task ids, found \(value.kind)")
        }
        guard elements.count <= limits.maxDependencies else {
            throw .field("depends_on", "\(elements.count) dependencies, over the limit of \(limits.maxDependencies)")
        }
        var ids: [String] = []
        var seen: Set<String> = []
        for (index, element) in elements.enumerated() {
            let field = "depends_on[\(index)]"
            guard case .string(let id) = element else { throw .field(field, "expected a task id, found \(element.kind)") }
            guard TaskParser.isValidTaskID(id) else {
                throw .field(field, "\(UntrustedText.quoted(id)) is not a valid task id (\(TaskIdentifier.rule))")
            }
            guard id != taskID else { throw .field(field, "a task cannot depend on itself") }
            guard seen.insert(id).inserted else { throw .field(field, "\(UntrustedText.quoted(id)) is listed twice") }
            ids.append(id)
        }
        return ids
    }

    private func createdAt() throws(TaskRejection) -> String? {
        guard let text = try optionalString("created_at") else { return nil }
        // Queue order compares these strings, so only well-formed times are allowed in.
        guard text.utf8.count <= 64, ISOTime.parse(text) != nil else {
            throw .field("created_at", "\(UntrustedText.quoted(text)) is not an ISO-8601 time like 2026-11-29T10:00:00Z")
        }
        return text
    }

    /// The grid a signed task is for (`GridID`, docs/ARCHITECTURE.md §9). Any
    /// other spelling is refused here; whether it is this grid is the
    /// signature check's question.
    private func grid() throws(TaskRejection) -> String? {
        guard let text = try optionalString("grid") else { return nil }
        guard GridID(text) != nil else {
            throw .field("grid", "\(UntrustedText.quoted(text)) is not a grid id (g- and 32 hex digits; `dgrid init` prints it)")
        }
        return text
    }

    /// A signed task's expiry: after it the task is refused, not run.
    private func notAfter() throws(TaskRejection) -> String? {
        guard let text = try optionalString("not_after") else { return nil }
        guard text.utf8.count <= 64, ISOTime.parse(text) != nil else {
            throw .field("not_after", "\(UntrustedText.quoted(text)) is not an ISO-8601 time like 2026-11-29T10:00:00Z")
        }
        return text
    }

    private func dependencyMode() throws(TaskRejection) -> DependencyMode? {
        guard let text = try optionalString("dependency_mode") else { return nil }
        guard let mode = DependencyMode(field: text) else {
            throw .field("dependency_mode", "\(UntrustedText.quoted(text, limit: 32)) is not a mode; use one of \(DependencyMode.spellings)")
        }
        return mode
    }

    /// D-GRID's integer N (N nodes run it, all N agree) or `{"replicas": N, "agree": K,
    /// "max_replicas": M, "compare": [...]}` (docs/ARCHITECTURE.md §11); other keys are refused.
    private func quorum() throws(TaskRejection) -> TaskQuorum? {
        guard let value = members["quorum"], value != .null else { return nil }
        func count(_ value: LedgerJSON.Value, _ name: String) throws(TaskRejection) -> Int {
            guard case .number(let number) = value, let count = number.integer, abs(count) <= 1 << 20 else {
                throw .field("quorum", "\(name): expected a whole number, found \(value.kind)")
            }
            return Int(count)
        }
        switch value {
        case .string("adaptive"):
            return TaskQuorum.adaptiveDefault
        case .number:
            let replicas = try count(value, "quorum")
            guard (1...TaskQuorum.replicaLimit).contains(replicas) else {
                throw .field("quorum", "\(replicas) is outside 1...\(TaskQuorum.replicaLimit)")
            }
            return TaskQuorum(replicas: replicas, agree: replicas)
        case .object(let fields):
            let known: Set<String> = ["replicas", "agree", "max_replicas", "compare"]
            if let first = fields.keys.filter({ !known.contains($0) }).sorted().first {
                throw .field("quorum", "unknown key \(UntrustedText.quoted(first, limit: 32)); expected replicas, agree, max_replicas, compare")
            }
            guard let replicasValue = fields["replicas"], replicasValue != .null else { throw .field("quorum", "replicas is missing") }
            let replicas = try count(replicasValue, "replicas")
            let agree = try fields["agree"].flatMap { $0 == .null ? nil : $0 }.map { (value) throws(TaskRejection) in try count(value, "agree") }
                ?? replicas / 2 + 1
            let maxReplicas = try fields["max_replicas"].flatMap { $0 == .null ? nil : $0 }
                .map { (value) throws(TaskRejection) in try count(value, "max_replicas") } ?? TaskQuorum.defaultMaxReplicas(replicas)
            var compare = Set(TaskQuorum.Field.allCases)
            if let listed = fields["compare"], listed != .null {
                guard case .array(let items) = listed else { throw .field("quorum", "compare: expected a list, found \(listed.kind)") }
                compare = []
                for item in items {
                    guard case .string(let name) = item, let field = TaskQuorum.Field(rawValue: name) else {
                        throw .field("quorum", "compare: \(UntrustedText.quoted(LedgerJSON.compact(item), limit: 32)) is not one of exit_code, stdout, artifacts")
                    }
                    compare.insert(field)
                }
            }
            if let problem = TaskQuorum.problem(replicas: replicas, agree: agree, maxReplicas: maxReplicas, compare: compare) {
                throw .field("quorum", problem)
            }
            return TaskQuorum(replicas: replicas, agree: agree, maxReplicas: maxReplicas, compare: compare)
        default:
            throw .field("quorum", "expected a whole number, \"adaptive\" or {\"replicas\": N, \"agree\": K}, found \(value.kind)")
        }
    }

    /// `true`/`false` (D-GRID) or `{"interval_seconds": N}` (the improvement
    /// report); any other key inside the object is refused, not ignored.
    private func checkpointing() throws(TaskRejection) -> TaskCheckpointing? {
        guard let value = members["checkpointing"], value != .null else { return nil }
        switch value {
        case .bool(let flag):
            return .enabled(flag)
        case .object(let fields):
            let unknown = fields.keys.filter { $0 != "interval_seconds" }.sorted()
            if let first = unknown.first {
                throw .field("checkpointing", "unknown key \(UntrustedText.quoted(first, limit: 32)); expected interval_seconds")
            }
            guard let interval = fields["interval_seconds"], interval != .null else {
                throw .field("checkpointing", "interval_seconds is missing")
            }
            let range = TaskCheckpointing.intervalRange
            guard case .number(let number) = interval, let seconds = number.integer else {
                throw .field("checkpointing", "interval_seconds: expected a whole number of seconds, found \(interval.kind)")
            }
            guard seconds >= Int64(range.lowerBound), seconds <= Int64(range.upperBound) else {
                throw .field("checkpointing", "interval_seconds: \(seconds) is outside \(range.lowerBound)...\(range.upperBound)")
            }
            return .every(intervalSeconds: Int(seconds))
        default:
            throw .field("checkpointing", "expected true, false or {\"interval_seconds\": N}, found \(value.kind)")
        }
    }

    private func maxAttempts() throws(TaskRejection) -> Int? {
        guard let value = members["max_attempts"], value != .null else { return nil }
        guard case .number(let number) = value, let attempts = number.integer else {
            throw .field("max_attempts", "expected a whole number of attempts, found \(value.kind)")
        }
        let range = limits.attemptRange
        guard attempts >= Int64(range.lowerBound), attempts <= Int64(range.upperBound) else {
            throw .field("max_attempts", "\(attempts) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(attempts)
    }

    // MARK: helpers

    private func requiredString(_ name: String) throws(TaskRejection) -> String {
        guard let value = members[name], value != .null else { throw .field(name, "missing (required)") }
        guard case .string(let text) = value else { throw .field(name, "expected a string, found \(value.kind)") }
        return text
    }

    private func optionalString(_ name: String) throws(TaskRejection) -> String? {
        guard let value = members[name], value != .null else { return nil }
        guard case .string(let text) = value else { throw .field(name, "expected a string, found \(value.kind)") }
        return text
    }

    /// Free text that ends up in logs and the dashboard: bounded, no control characters.
    private func shortText(_ name: String, maxBytes: Int) throws(TaskRejection) -> String? {
        guard let text = try optionalString(name) else { return nil }
        guard text.utf8.count <= maxBytes else { throw .field(name, "longer than \(maxBytes) bytes") }
        guard !text.unicodeScalars.contains(where: UntrustedText.isDangerous) else {
            throw .field(name, "\(UntrustedText.quoted(text)) contains control characters")
        }
        return text
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`
    static func isEnvName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }
}
