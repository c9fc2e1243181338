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
            switch Self.readStored(artifact) {
            case .failure(let failure): return .failure(failure)
            case .success(let read): bytes = read
            }
        }
        guard UInt64(bytes.count) == artifact.size, Digest(of: bytes) == artifact.digest else {
            return .failure(.corrupt("the store's bytes do not match \(artifact.digest.short) (\(artifact.size) bytes recorded, \(bytes.count) found)"))
        }
        return .success(bytes)
    }

    /// A directory store's file, as a record names it. Records are anyone's to
    /// push, so the location is held to the store's shape — an absolute
    /// `…/sha256/<the artifact's own digest>` with no `..` — and read only as a
    /// regular file of the recorded size (never `/dev/zero`, a FIFO, or a link).
    static func readStored(_ artifact: Artifact) -> Result<[UInt8], Failure> {
        let location = artifact.location
        guard location.hasPrefix("/"), location.hasSuffix("/sha256/" + artifact.digest.hex),
              !location.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }), !location.utf8.contains(0) else {
            return .failure(.corrupt("\(UntrustedText.quoted(location, limit: 200)) is not a directory store's sha256/\(artifact.digest.short.dropFirst(7))… path"))
        }
        let fd = open(location, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.missing("\(location) is not on this host (\(String(cString: strerror(errno))))")) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, UInt64(info.st_size) == artifact.size else {
            return .failure(.corrupt("\(location) is not a regular file of the \(artifact.size) bytes recorded"))
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return .failure(.corrupt("\(location) ended after \(got) of \(artifact.size) bytes")) }
            got += n
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

    /// `bytes` at `path` (clean and relative) under the directory `root`; nil, or why not.
    static func write(_ bytes: [UInt8], to path: String, under root: String) -> String? {
        guard CheckpointPath.problem(path) == nil else { return "not a clean relative path" }
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        return RelativeFiles.write(bytes, to: path, in: fd, replacing: true)
    }
}
