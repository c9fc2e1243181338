import Foundation
import Sandbox

/// Checkpoints on the grid (docs/ARCHITECTURE.md §10): `refs/dgrid/checkpoints/<task>`
/// holds one orphan commit — `checkpoint.json` and `blobs/<sha256 hex>`, one
/// per distinct content — replaced by compare-and-swap at every snapshot, so a
/// task checkpointed every second for a day is still one commit (O(1) history),
/// and an unchanged file is neither stored nor pushed twice. The fold deletes
/// the ref with the task's result.
struct CheckpointStore {
    let connection: GridConnection

    static func refName(_ taskID: String) -> String { GridConnection.checkpointsPrefix + taskID }

    /// Publishes `contents` as the task's latest checkpoint. `previous`: the
    /// ref as this attempt last moved it; nil for its first, which replaces
    /// whatever an earlier attempt left (this worker holds the claim now).
    /// nil when the ref moved meanwhile: another attempt owns the task.
    func publish(_ contents: CheckpointContents, taskID: String, attempt: Int, previous: GitOID?, now: Date = Date()) throws(GridError) -> GitOID? {
        var changes: [LedgerChange] = []
        var stored: Set<Digest> = []
        var files: [CheckpointManifest.File] = []
        for file in contents.files {
            let digest = Digest(of: file.bytes)
            files.append(CheckpointManifest.File(path: file.path, digest: digest, size: UInt64(file.bytes.count), mode: file.mode))
            if stored.insert(digest).inserted { changes.append(LedgerChange(path: "blobs/" + digest.hex, content: file.bytes)) }
        }
        let manifest = CheckpointManifest(taskID: taskID, nodeID: connection.settings.nodeID, attempt: attempt, takenAt: ISOTime.string(now),
                                          directories: contents.directories, files: files, links: contents.links, skipped: contents.skipped)
        changes.append(LedgerChange(path: "checkpoint.json", content: manifest.json()))
        let name = Self.refName(taskID)
        let node = connection.settings.nodeID
        return try connection.withCheckpointLedger { (ledger) throws(LedgerError) -> GitOID? in
            let commit = try ledger.commit(parent: nil, changes: changes, message: "checkpoint \(taskID) attempt \(attempt) by \(node)")
            let update: RefUpdate
            if let previous {
                update = try ledger.replaceRef(name, from: previous, to: commit)
            } else if let current = try ledger.remoteRefs(prefix: name)[name] {
                update = try ledger.replaceRef(name, from: current, to: commit)
            } else {
                update = try ledger.createRef(name, target: commit)
            }
            return update == .applied ? commit : nil
        }
    }

    /// The task's latest checkpoint as listed in `snapshot`, checked before
    /// anything is restored: nil when it has none; a refusal (the task then
    /// starts afresh) when it is another task's, malformed, too large for this
    /// worker, or a file's bytes do not match their digest.
    func latest(taskID: String, capacity: UInt64, in snapshot: GridSnapshot) throws(GridError) -> Result<CheckpointContents, CheckpointRefusal>? {
        guard let commit = snapshot.checkpoints[taskID] else { return nil }
        let name = Self.refName(taskID)
        do {
            return try connection.withCheckpointLedger { (ledger) throws(LedgerError) -> Result<CheckpointContents, CheckpointRefusal> in
                if !ledger.hasObject(commit) { try ledger.fetch([name], keepRefs: false) }
                let tree = try ledger.tree(of: commit)
                guard let manifestBlob = tree["checkpoint.json"] else { return .failure(.malformed("no checkpoint.json")) }
                let manifest: CheckpointManifest
                switch CheckpointManifest.parse(try ledger.blob(manifestBlob, limit: CheckpointManifest.maxBytes), capacity: capacity) {
                case .failure(let refusal): return .failure(refusal)
                case .success(let parsed): manifest = parsed
                }
                guard manifest.taskID == taskID else { return .failure(.otherTask(manifest.taskID)) }
                var contents = CheckpointContents(directories: manifest.directories, links: manifest.links, skipped: manifest.skipped)
                for file in manifest.files {
                    guard let blob = tree["blobs/" + file.digest.hex] else { return .failure(.missingBlob(path: file.path)) }
                    let bytes: [UInt8]
                    do throws(LedgerError) {
                        bytes = try ledger.blob(blob, limit: Int(clamping: file.size))
                    } catch where error.kind == .object {
                        return .failure(.digestMismatch(path: file.path))  // larger than recorded
                    }
                    guard UInt64(bytes.count) == file.size, Digest(of: bytes) == file.digest else {
                        return .failure(.digestMismatch(path: file.path))
                    }
                    contents.files.append(CheckpointContents.File(path: file.path, mode: file.mode, bytes: bytes))
                }
                return .success(contents)
            }
        } catch {
            if case .ledger(let ledgerError) = error, ledgerError.kind == .network || ledgerError.kind == .authentication { throw error }
            // A commit gone since the listing, or objects a writer broke: not restorable.
            return .failure(.unreadable("\(error)"))
        }
    }
}
