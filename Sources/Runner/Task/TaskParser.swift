import Foundation

/// Task files in and out. `parse` is the edge where repository bytes (docs/THREATS.md,
/// attacker 3) become a `TaskFile`: every refusal is a `TaskRejection` naming the
/// field, never a crash, and nothing past the size check is read from an oversized blob.
public enum TaskParser {
    /// JSON object; required task_id (string), script (string), timeout_seconds (integer, also accept an integral JSON number like 30.0 but not "30" or true);
    /// optional max_attempts (integer in `limits.attemptRange`), image (string), priority (one of the four), resources {cpus (number > 0), memory ("256m"/"1g"/bytes integer), pids (int > 0)},
    /// env (object of string→string, keys [A-Za-z_][A-Za-z0-9_]*, at most 64), depends_on (array of valid task ids), created_at (string), submitter (string).
    /// Refuses: not JSON / not an object, over maxFileBytes, missing or mistyped fields, id pattern, timeout out of range, script over maxScriptBytes or containing NUL, resources above the limits.
    ///
    /// Also refuses duplicate keys anywhere (two JSON readers could disagree on which
    /// one wins), nesting deeper than 64, invalid UTF-8, and unknown keys inside
    /// `resources`. A JSON `null` for an optional field means absent.
    public static func parse(_ bytes: [UInt8], limits: TaskLimits = TaskLimits()) -> Result<TaskFile, TaskRejection> {
        guard bytes.count <= limits.maxFileBytes else {
            return .failure(TaskRejection(
                reason: "task file is \(bytes.count) bytes, over the limit of \(limits.maxFileBytes); keep data out of the task file and fetch it at run time"))
        }
        let document: LedgerJSON.Value
        switch LedgerJSON.parse(bytes) {
        case .success(let value): document = value
        case .failure(let error):
            return .failure(TaskRejection(reason: "task file is not valid JSON: \(error.message) at byte \(error.offset)"))
        }
        guard case .object(let members) = document else {
            return .failure(TaskRejection(reason: "task file must be a JSON object, found \(document.kind)"))
        }
        do {
            return .success(try TaskFieldReader(members: members, limits: limits).task())
        } catch {
            return .failure(error)
        }
    }

    /// 1–128 bytes of [A-Za-z0-9._-], not starting with '.' or '-', no "..".
    /// Also not ending in '.' or ".lock", which Git refuses in ref names.
    public static func isValidTaskID(_ id: String) -> Bool {
        TaskIdentifier.isValid(id, maxBytes: 128)
    }

    /// The JSON dgrid submit writes: D-GRID fields first-class, sorted keys, created_at filled.
    public static func encode(_ task: TaskFile) -> [UInt8] {
        encode(task, now: Date())
    }

    /// `encode` with the clock passed in: `created_at` is set to `now` when the task has none.
    public static func encode(_ task: TaskFile, now: Date) -> [UInt8] {
        typealias V = LedgerJSON.Value
        var members: [String: V] = [:]
        // Unknown fields first, so a known field of the same name always wins.
        for (name, json) in task.unknownValues {
            if case .success(let value) = LedgerJSON.parse(Array(json.utf8)) { members[name] = value }
        }
        members["task_id"] = .string(task.taskID)
        members["script"] = .string(task.script)
        members["timeout_seconds"] = .number(.init(Int64(task.timeoutSeconds)))
        members["priority"] = .string(task.priority.rawValue)
        members["created_at"] = .string(task.createdAt ?? ISOTime.string(now))
        if let image = task.image { members["image"] = .string(image) }
        if let submitter = task.submitter { members["submitter"] = .string(submitter) }
        if !task.env.isEmpty { members["env"] = .object(task.env.mapValues { .string($0) }) }
        if !task.dependsOn.isEmpty { members["depends_on"] = .array(task.dependsOn.map { .string($0) }) }
        if let mode = task.dependencyMode { members["dependency_mode"] = .string(mode.rawValue) }
        if let quorum = task.quorum { members["quorum"] = quorum.value() }
        switch task.checkpointing {
        case .enabled(let flag)?: members["checkpointing"] = .bool(flag)
        case .every(let seconds)?: members["checkpointing"] = .object(["interval_seconds": .number(.init(Int64(seconds)))])
        case nil: break
        }
        if let attempts = task.maxAttempts { members["max_attempts"] = .number(.init(Int64(attempts))) }
        if let grid = task.grid { members["grid"] = .string(grid) }
        if let notAfter = task.notAfter { members["not_after"] = .string(notAfter) }
        if !task.resources.isEmpty {
            var resources: [String: V] = [:]
            if let cpus = task.resources.cpus, let number = LedgerJSON.Number(cpus) { resources["cpus"] = .number(number) }
            if let memory = task.resources.memoryBytes { resources["memory"] = .number(.init(memory)) }
            if let pids = task.resources.pids { resources["pids"] = .number(.init(Int64(pids))) }
            members["resources"] = .object(resources)
        }
        return LedgerJSON.write(.object(members))
    }
}
