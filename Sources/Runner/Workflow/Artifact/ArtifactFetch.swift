import Foundation
import Sandbox

/// Reads a result's artifacts back from their stores (docs/ARCHITECTURE.md §10),
/// each verified against its digest before anyone sees a byte of it: for
/// `dgrid result --download` and a dependent's `/inputs/<dependency>/artifacts/`.
public struct ArtifactFetch {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    /// Why an artifact cannot be had, in one line.
    public enum Failure: Error, CustomStringConvertible {
        case missing(String)
        case corrupt(String)

        public var description: String {
            switch self {
            case .missing(let why): "missing: \(why)"
            case .corrupt(let why): "corrupt: \(why)"
            }
        }
    }

    /// The bytes of `artifact` of task `taskID` as `snapshot` shows the grid.
    func bytes(of artifact: Artifact, taskID: String, snapshot: GridSnapshot) -> Result<[UInt8], Failure> {
        let bytes: [UInt8]
        switch artifact.store {
        case .none:
            return .failure(.missing("not kept: larger than the Git store takes, and the worker had no other store"))
        case .git:
            let limit = Int(clamping: artifact.size)
            if let blob = snapshot.files[ArtifactLocation.onMain(artifact.digest)] {
                guard let read = try? connection.blob(blob, limit: limit) else {
                    return .failure(.corrupt("\(ArtifactLocation.onMain(artifact.digest)) on main is larger than the \(artifact.size) bytes recorded"))
                }
                bytes = read
            } else if let commit = snapshot.results[taskID],
                      let read = try? connection.file(ArtifactLocation.inResult(artifact.digest), of: commit, limit: limit) {
                bytes = read
            } else {
                return .failure(.missing("not on main (\(ArtifactLocation.onMain(artifact.digest))) nor in an unfolded result"))
            }
        case .directory:
            guard let data = FileManager.default.contents(atPath: artifact.location) else {
                return .failure(.missing("\(artifact.location) is not on this host"))
            }
            bytes = Array(data)
        }
        guard UInt64(bytes.count) == artifact.size, Digest(of: bytes) == artifact.digest else {
            return .failure(.corrupt("the store's bytes do not match \(artifact.digest.short) (\(artifact.size) bytes recorded, \(bytes.count) found)"))
        }
        return .success(bytes)
    }

    /// Writes every artifact of `record` under `directory` at its path (never
    /// through a symlink, never outside it); what could not be had, one line each.
    public func download(_ record: ResultRecord, into directory: String) throws(GridError) -> [(path: String, failure: Failure)] {
        let snapshot = try connection.snapshot()
        var failures: [(String, Failure)] = []
        // The whole streams, when the record cut them, beside the /output files.
        let streams = [(record.stdoutArtifact, Self.stdoutFile), (record.stderrArtifact, Self.stderrFile)].compactMap { artifact, name in
            artifact.map { ($0, name) }
        }
        for (artifact, name) in record.artifacts.map({ ($0, $0.path) }) + streams {
            switch bytes(of: artifact, taskID: record.taskID, snapshot: snapshot) {
            case .failure(let failure):
                failures.append((name, failure))
            case .success(let bytes):
                if let problem = Self.write(bytes, to: name, under: directory) {
                    throw .local("writing \(UntrustedText.quoted(artifact.path)) under \(directory): \(problem)")
                }
            }
        }
        return failures
    }

    /// Where a download writes the whole streams: names no /output file of a task is likely to hold.
    public static let stdoutFile = "dgrid-stdout", stderrFile = "dgrid-stderr"

    /// `bytes` at `path` (clean and relative, already checked) under `root`,
    /// creating directories; an existing symlink on the way is refused.
    static func write(_ bytes: [UInt8], to path: String, under root: String) -> String? {
        guard CheckpointPath.problem(path) == nil else { return "not a clean relative path" }
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        var parts = path.split(separator: "/").map(String.init)
        let name = parts.removeLast()
        for part in parts {
            if mkdirat(fd, part, 0o755) != 0 && errno != EEXIST { close(fd); return String(cString: strerror(errno)) }
            let next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(fd)
            guard next >= 0 else { return "\(part): \(String(cString: strerror(errno)))" }
            fd = next
        }
        defer { close(fd) }
        let file = openat(fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard file >= 0 else { return String(cString: strerror(errno)) }
        defer { close(file) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(file, $0.baseAddress! + written, bytes.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return String(cString: strerror(errno)) }
            written += n
        }
        return nil
    }
}
