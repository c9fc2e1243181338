import Foundation
import Sandbox

/// `/inputs/<dependency id>/` of a task with dependencies (docs/ARCHITECTURE.md §10):
/// each finished dependency's result record as folded on main (`result.json`),
/// its `stdout` and `stderr`, read-only in the sandbox. A dependency that has
/// not finished (an `any_succeeded` task starts on the first success) has no
/// directory.
///
/// A root worker writes them into a detached tmpfs (`ScratchVolume`): no host
/// path is named in the sandbox's mount table, nothing is left on disk, and a
/// killed worker leaves nothing to sweep. A rootless worker cannot make one and
/// writes under `$DGRID_HOME/run/inputs/` instead (files 0644 in 0755
/// directories: the sandbox's ids are not the worker's), removed after the
/// run; a killed worker's are swept at the next start.
final class TaskInputs {
    let volume: SandboxVolume
    /// The host directory of a rootless worker's inputs; nil for a tmpfs.
    private let hostPath: String?
    /// Where files are written: the tmpfs's root, or the host directory.
    private let root: Int32

    static let volumeName = "inputs"
    /// A result record is at most this large on main (records are capped at the worker).
    static let maxRecordBytes = 4 << 20
    /// A registry artifact larger than any worker's `/output` (`output_size` ≤ 64 GiB) is a
    /// forged record's: left out before its size can swell the volume or an addition overflow.
    static let maxRegistryArtifactBytes: UInt64 = 64 << 30

    private init(volume: SandboxVolume, hostPath: String?, root: Int32) {
        self.volume = volume
        self.hostPath = hostPath
        self.root = root
    }

    deinit {
        if hostPath != nil { close(root) }
    }

    /// The inputs of `task` as `snapshot` shows its dependencies; nil for a task without any.
    static func prepare(for task: TaskFile, snapshot: GridSnapshot, connection: GridConnection) throws(GridError) -> TaskInputs? {
        guard !task.dependsOn.isEmpty else { return nil }
        // A record main cannot give (too large, a broken object) is the task's to notice, not this host's fault.
        var records: [(id: String, bytes: [UInt8])] = []
        for dependency in task.dependsOn {
            // Archived or not (docs/ARCHITECTURE.md §10): a dependency finished long ago still gives its result.
            guard let bytes = try? connection.foldedRecord(of: dependency, in: snapshot, limit: maxRecordBytes) else { continue }
            records.append((dependency, bytes))
        }
        // Their artifacts (docs/ARCHITECTURE.md §10), each checked against its digest; one that cannot be had is left out.
        // Registry artifacts only from this worker's own artifact_registry (docs/THREATS.md, T19).
        let fetch = ArtifactFetch(connection: connection, trustedRegistries: connection.settings.artifactRegistry.map { [$0] } ?? [])
        var artifacts: [String: [(path: String, bytes: [UInt8])]] = [:]
        var fromRegistry: [(dependency: String, path: String, artifact: Artifact)] = []
        var artifactBytes = 0
        // The whole streams when a record cut them and their artifacts can be had, verified; else the record's.
        var streams: [String: (stdout: [UInt8], stderr: [UInt8])] = [:]
        for (dependency, bytes) in records {
            let record = ResultRecord.parse(bytes)
            let whole = { (artifact: Artifact?, recorded: String?) -> [UInt8] in
                guard let artifact, case .success(let content) = fetch.bytes(of: artifact, taskID: dependency, snapshot: snapshot) else {
                    return Array((recorded ?? "").utf8)
                }
                return content
            }
            let kept = (whole(record?.stdoutArtifact, record?.stdout), whole(record?.stderrArtifact, record?.stderr))
            streams[dependency] = kept
            artifactBytes += kept.0.count + kept.1.count
            for (artifact, name) in [(record?.stdoutArtifact, "stdout"), (record?.stderrArtifact, "stderr")] {
                guard let artifact, artifact.store == .registry, artifact.size <= maxRegistryArtifactBytes,
                      case .success = fetch.registrySource(of: artifact) else { continue }
                fromRegistry.append((dependency, name, artifact))
                artifactBytes += Int(clamping: artifact.size) + 4096
            }
            for artifact in record?.artifacts ?? [] {
                if artifact.store == .registry {
                    // Sized now, fetched once the volume exists: straight into it, never through memory.
                    guard artifact.size <= maxRegistryArtifactBytes, case .success = fetch.registrySource(of: artifact) else { continue }
                    fromRegistry.append((dependency, "artifacts/" + artifact.path, artifact))
                    artifactBytes += Int(clamping: artifact.size) + 4096
                    continue
                }
                guard case .success(let content) = fetch.bytes(of: artifact, taskID: dependency, snapshot: snapshot) else { continue }
                artifacts[dependency, default: []].append((artifact.path, content))
                artifactBytes += content.count + 4096
            }
        }
        // Each record is written about twice (result.json, and stdout and stderr within it), plus a page per file.
        let needed = records.reduce((1 << 20) + artifactBytes) { $0 + 2 * $1.bytes.count + 4 * 4096 }
        let inputs = try make(capacity: ByteCount(bytes: UInt64(needed)), state: connection.settings.state)
        do throws(GridError) {
            // The whole streams from the registry first: where one is had, the record's text is not written over it.
            var placed: Set<String> = []
            for (dependency, path, artifact) in fromRegistry {
                switch fetch.place(artifact, at: dependency + "/" + path, under: inputs.root, replacing: false) {
                case .written:
                    placed.insert(dependency + "/" + path)
                case .failed(.unreachable(let why)):
                    // The registry is this host's: a dependent must not run without its inputs.
                    throw .artifactRegistry("the task's /inputs: \(dependency)/\(path): \(why)")
                case .failed, .notWritten:
                    continue  // missing, corrupt, refused, or a clashing path: the task's to notice
                }
            }
            for (dependency, bytes) in records {
                try inputs.write(bytes, to: dependency + "/result.json")
                for (name, content) in [("stdout", streams[dependency]?.stdout ?? []), ("stderr", streams[dependency]?.stderr ?? [])]
                where !placed.contains(dependency + "/" + name) {
                    try inputs.write(content, to: dependency + "/" + name)
                }
                // A record is anyone's to push: paths that clash (twice the same, a file where another
                // needs a directory) leave that artifact out — the task's to notice, never this host's fault.
                for (path, content) in artifacts[dependency] ?? [] {
                    _ = RelativeFiles.write(content, to: dependency + "/artifacts/" + path, in: inputs.root)
                }
            }
        } catch {
            inputs.remove()
            throw error
        }
        return inputs
    }

    private static func make(capacity: ByteCount, state: StateDirectory) throws(GridError) -> TaskInputs {
        if let scratch = try? ScratchVolume(capacity: capacity, owner: UserID(uid: 0, gid: 0)) {
            return TaskInputs(volume: SandboxVolume(name: volumeName, source: .scratch(scratch, readOnly: true)),
                              hostPath: nil, root: scratch.descriptor)
        }
        let parent: String
        do {
            parent = try state.directory("run/inputs")
        } catch {
            throw .local("the task's /inputs: \(error)")
        }
        let path = parent + "/\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        guard mkdir(path, 0o755) == 0, chmod(path, 0o755) == 0 else {
            throw .local("the task's /inputs: creating \(path): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .local("the task's /inputs: opening \(path): \(String(cString: strerror(errno)))") }
        return TaskInputs(volume: SandboxVolume(name: volumeName, source: .readOnly(path: path)), hostPath: path, root: fd)
    }

    /// Removes a rootless worker's host directory; a tmpfs goes with its last descriptor.
    func remove() {
        guard let hostPath else { return }
        Self.remove(hostPath)
    }

    /// Inputs left by rootless workers that are gone (killed mid-run): this
    /// process's pid prefixes its own, so any other whose process is dead is swept.
    static func sweep(state: StateDirectory) {
        guard let parent = try? state.existingDirectory("run/inputs"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in names {
            guard let pid = name.split(separator: "-").first.flatMap({ pid_t($0) }), pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            remove(parent + "/" + name)
        }
    }

    private static func remove(_ path: String) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let parent = open(String(path[..<slash]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        defer { close(parent) }
        _ = removeTree(in: parent, name: String(path[path.index(after: slash)...]))
    }

    private func write(_ bytes: [UInt8], to name: String) throws(GridError) {
        if let why = RelativeFiles.write(bytes, to: name, in: root) { throw .local("the task's /inputs: \(name): \(why)") }
    }
}
