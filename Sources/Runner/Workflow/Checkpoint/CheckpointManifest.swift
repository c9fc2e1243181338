import Sandbox

/// `checkpoint.json` of a checkpoint commit (docs/ARCHITECTURE.md §10): what
/// `/checkpoint` held when it was copied. File contents are stored beside it
/// as `blobs/<sha256 hex>`, content-addressed, so no name the task chose ever
/// becomes a Git path, and an unchanged file is stored (and pushed) once.
struct CheckpointManifest: Equatable, Sendable {
    struct File: Equatable, Sendable {
        /// Relative, '/'-separated (`CheckpointPath`).
        let path: String
        let digest: Digest
        let size: UInt64
        /// Permission bits only.
        let mode: UInt32
    }

    struct Link: Equatable, Sendable {
        let path: String
        let target: String
    }

    let taskID: String
    let nodeID: String
    let attempt: Int
    let takenAt: String
    let directories: [String]
    let files: [File]
    let links: [Link]
    /// Entries not kept: special files (FIFOs, sockets), names that are not UTF-8, past the depth or count bound.
    let skipped: Int

    var bytes: UInt64 { files.reduce(0) { $0 + $1.size } }

    static let maxBytes = 32 << 20

    func json() -> [UInt8] {
        LedgerJSON.write(.object([
            "task_id": .string(taskID), "node_id": .string(nodeID), "attempt": .int(Int64(attempt)), "taken_at": .string(takenAt),
            "directories": .array(directories.map { .string($0) }),
            "files": .array(files.map { file in
                .object(["path": .string(file.path), "digest": .string(file.digest.description), "size": .uint(file.size),
                         "mode": .int(Int64(file.mode))])
            }),
            "symlinks": .array(links.map { .object(["path": .string($0.path), "target": .string($0.target)]) }),
            "skipped": .int(Int64(skipped)), "bytes": .uint(bytes),
        ]))
    }

    /// Reads what `json()` writes, refusing anything a restore must not follow:
    /// a path that is not a clean relative path, a digest that is not sha256,
    /// a size past `capacity`. The reason names the field.
    static func parse(_ bytes: [UInt8], capacity: UInt64) -> Result<CheckpointManifest, CheckpointRefusal> {
        guard let fields = RecordFields(bytes) else { return .failure(.malformed("checkpoint.json is not a JSON object")) }
        guard let taskID = fields.string("task_id"), let nodeID = fields.string("node_id"),
              let attempt = fields.int("attempt"), let takenAt = fields.string("taken_at") else {
            return .failure(.malformed("checkpoint.json lacks task_id, node_id, attempt or taken_at"))
        }
        var directories: [String] = [], files: [File] = [], links: [Link] = []
        var total: UInt64 = 0
        func list(_ key: String) -> [LedgerJSON.Value] {
            if case .array(let items)? = fields.members[key] { return items }
            return []
        }
        func object(_ value: LedgerJSON.Value) -> RecordFields? {
            if case .object(let members) = value { return RecordFields(members: members) }
            return nil
        }
        for (index, value) in list("directories").enumerated() {
            guard case .string(let path) = value, CheckpointPath.problem(path) == nil else {
                return .failure(.malformed("directories[\(index)] is not a clean relative path"))
            }
            directories.append(path)
        }
        for (index, value) in list("files").enumerated() {
            guard let file = object(value), let path = file.string("path"), let digestText = file.string("digest"),
                  let size = file.unsigned("size"), let mode = file.int("mode") else {
                return .failure(.malformed("files[\(index)] lacks path, digest, size or mode"))
            }
            if let problem = CheckpointPath.problem(path) { return .failure(.malformed("files[\(index)].path: \(problem)")) }
            guard let digest = try? Digest(parsing: digestText) else {
                return .failure(.malformed("files[\(index)].digest is not a sha256 digest"))
            }
            total += size
            guard total <= capacity else { return .failure(.tooLarge(bytes: total, capacity: capacity)) }
            files.append(File(path: path, digest: digest, size: size, mode: UInt32(truncatingIfNeeded: mode) & 0o777))
        }
        for (index, value) in list("symlinks").enumerated() {
            guard let link = object(value), let path = link.string("path"), let target = link.string("target"),
                  CheckpointPath.problem(path) == nil, !target.isEmpty, target.utf8.count <= 4096, !target.utf8.contains(0) else {
                return .failure(.malformed("symlinks[\(index)] is not a clean path with a target"))
            }
            links.append(Link(path: path, target: target))
        }
        guard directories.count + files.count + links.count <= CheckpointContents.maxEntries else {
            return .failure(.malformed("more than \(CheckpointContents.maxEntries) entries"))
        }
        return .success(CheckpointManifest(taskID: taskID, nodeID: nodeID, attempt: attempt, takenAt: takenAt,
                                           directories: directories, files: files, links: links, skipped: fields.int("skipped") ?? 0))
    }
}

/// Why a checkpoint is not restored: the task then starts from the beginning.
enum CheckpointRefusal: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case otherTask(String)
    case tooLarge(bytes: UInt64, capacity: UInt64)
    case digestMismatch(path: String)
    case missingBlob(path: String)
    case unreadable(String)

    var description: String {
        switch self {
        case .malformed(let why): "malformed: \(why)"
        case .otherTask(let id): "it is task \(UntrustedText.shown(id, limit: 128))'s checkpoint, not this task's"
        case .tooLarge(let bytes, let capacity): "it holds \(bytes) bytes, over this worker's /checkpoint of \(capacity)"
        case .digestMismatch(let path): "\(UntrustedText.quoted(path, limit: 200)): its bytes do not match the digest recorded"
        case .missingBlob(let path): "\(UntrustedText.quoted(path, limit: 200)): its content is missing from the checkpoint"
        case .unreadable(let why): "cannot be read: \(why)"
        }
    }
}

/// The paths a checkpoint may name: relative, '/'-separated, no empty, `.` or
/// `..` component, no NUL, at most 4,096 bytes and 64 levels deep.
enum CheckpointPath {
    static let maxDepth = 64

    static func problem(_ path: String) -> String? {
        guard !path.isEmpty, path.utf8.count <= 4096 else { return "empty or over 4096 bytes" }
        guard !path.utf8.contains(0) else { return "contains NUL" }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= maxDepth else { return "deeper than \(maxDepth) levels" }
        guard !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return "not a clean relative path" }
        return nil
    }
}
