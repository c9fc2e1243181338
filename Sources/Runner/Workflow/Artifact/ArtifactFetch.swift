import CShims
import Foundation
import Sandbox

/// Reads a result's artifacts back from their stores (docs/ARCHITECTURE.md §10),
/// each verified against its digest before anyone sees a byte of it: for
/// `dgrid result --download` and a dependent's `/inputs/<dependency>/artifacts/`.
public struct ArtifactFetch {
    let connection: GridConnection
    /// The only registries a registry artifact is fetched from: a record is anyone's
    /// to push, and its location must not send this host — with its registry
    /// credentials — to any host a writer names (docs/THREATS.md, T19).
    let trustedRegistries: [ArtifactRepository]
    let helper: RegistryHelper

    /// `trustedRegistries`: a worker's own `artifact_registry`; for a download,
    /// `--artifact-registry` or `$DGRID_ARTIFACT_REGISTRY`.
    public init(connection: GridConnection, trustedRegistries: [ArtifactRepository]) {
        self.connection = connection
        self.trustedRegistries = trustedRegistries
        helper = RegistryHelper(settings: connection.settings)
    }

    /// The registries a download trusts: each `--artifact-registry`, else
    /// `$DGRID_ARTIFACT_REGISTRY` (the worker's own setting's name, so a host
    /// that runs a worker and downloads agrees with itself). None: a registry
    /// artifact is refused with the flag that allows it.
    public static func trustedRegistries(flags: [String], environment: [String: String]) throws(GridError) -> [ArtifactRepository] {
        let texts = flags.isEmpty ? (environment[WorkerSettingKey.artifactRegistry.environmentName].map { [$0] } ?? []) : flags
        var trusted: [ArtifactRepository] = []
        for text in texts where !text.trimmingCharacters(in: .whitespaces).isEmpty {
            do {
                trusted.append(try ArtifactRepository(parsing: text.trimmingCharacters(in: .whitespaces)))
            } catch {
                throw .local("--artifact-registry: \(error)")
            }
        }
        return trusted
    }

    /// Why an artifact cannot be had, in one line.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case missing(String)
        case corrupt(String)
        /// Its location names a registry this host does not fetch from.
        case refused(String)
        /// The registry could not be asked (down, credentials, the helper).
        case unreachable(String)

        public var description: String {
            switch self {
            case .missing(let why): "missing: \(why)"
            case .corrupt(let why): "corrupt: \(why)"
            case .refused(let why): "refused: \(why)"
            case .unreachable(let why): "unreachable: \(why)"
            }
        }
    }

    /// The bytes of `artifact` of task `taskID` as `snapshot` shows the grid (Git
    /// and directory stores; a registry artifact is `place`d into a file instead).
    func bytes(of artifact: Artifact, taskID: String, snapshot: GridSnapshot) -> Result<[UInt8], Failure> {
        let bytes: [UInt8]
        switch artifact.store {
        case .none:
            return .failure(.missing("not kept: larger than the Git store takes, and the worker had no other store"))
        case .registry:
            return .failure(.missing("a registry artifact is fetched into a file, not into memory"))
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

    // MARK: - the registry store

    /// The repository a registry artifact is fetched from: its location parsed
    /// strictly (`ArtifactManifestLocation`) and its repository one this host
    /// trusts; else why not. No byte is asked of any registry before this passes.
    func registrySource(of artifact: Artifact) -> Result<ArtifactRepository, Failure> {
        Self.registrySource(of: artifact, trusting: trustedRegistries)
    }

    static func registrySource(of artifact: Artifact, trusting trustedRegistries: [ArtifactRepository]) -> Result<ArtifactRepository, Failure> {
        let location: ArtifactManifestLocation
        do {
            location = try ArtifactManifestLocation(parsing: artifact.location)
        } catch {
            return .failure(.corrupt(error.description))
        }
        guard trustedRegistries.contains(location.repository) else {
            let trusted = trustedRegistries.isEmpty ? "none is configured" : "this host fetches only from " + trustedRegistries.map(\.description).joined(separator: ", ")
            return .failure(.refused("stored in \(location.repository), not an artifact registry this host trusts (\(trusted); "
                                     + "--artifact-registry or DGRID_ARTIFACT_REGISTRY names one)"))
        }
        return .success(location.repository)
    }

    /// How placing a registry artifact ended.
    enum Placed: Equatable {
        case written
        /// Not fetched: one line.
        case failed(Failure)
        /// Fetched and verified, but it could not be given its name (a clash, the disk).
        case notWritten(String)
    }

    /// A registry artifact as the file `path` (clean, relative) under the
    /// directory `root`: the helper writes it into an unnamed file there
    /// (O_TMPFILE), checking size and digest as the bytes arrive; only when it
    /// has them all and they match is the file linked in at `path` (its
    /// directories made without following a link). Nothing of a missing or
    /// corrupt artifact ever has a name under `root`.
    func place(_ artifact: Artifact, at path: String, under root: Int32, replacing: Bool) -> Placed {
        let repository: ArtifactRepository
        switch registrySource(of: artifact) {
        case .failure(let failure): return .failed(failure)
        case .success(let source): repository = source
        }
        guard CheckpointPath.problem(path) == nil else { return .notWritten("not a clean relative path") }
        let file = UnnamedFile(in: root)
        guard file.fd >= 0 else { return .notWritten("an unnamed file for it: \(errnoText(file.error))") }
        defer { file.discard() }
        if let failure = helper.fetch(repository, digest: artifact.digest, size: artifact.size, into: file.fd) {
            switch failure.exit {
            case .missing: return .failed(.missing("not in \(repository): \(failure.message)"))
            case .corrupt: return .failed(.corrupt(failure.message))
            case .ok, .failed: return .failed(.unreachable(failure.message))
            }
        }
        var info = stat()
        guard fstat(file.fd, &info) == 0, UInt64(info.st_size) == artifact.size else {
            return .failed(.corrupt("the helper wrote \(info.st_size) bytes, not the \(artifact.size) recorded"))
        }
        guard fchmod(file.fd, 0o644) == 0 else { return .notWritten(errnoText(errno)) }
        guard let (parent, name) = RelativeFiles.parent(of: path, in: root, creating: true) else { return .notWritten(errnoText(errno)) }
        defer { close(parent) }
        if replacing, unlinkat(parent, name, 0) != 0, errno != ENOENT { return .notWritten(errnoText(errno)) }
        if let problem = file.link(as: name, in: parent) { return .notWritten(problem) }
        return .written
    }

    // MARK: - downloads

    /// Writes every artifact of `record` under `directory` at its path (never
    /// through a symlink, never outside it); what could not be had, one line each.
    public func download(_ record: ResultRecord, into directory: String) throws(GridError) -> [(path: String, failure: Failure)] {
        let snapshot = try connection.snapshot()
        let root = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw .local("\(directory): \(errnoText(errno))") }
        defer { close(root) }
        var failures: [(String, Failure)] = []
        // The whole streams, when the record cut them, beside the /output files.
        let streams = [(record.stdoutArtifact, Self.stdoutFile), (record.stderrArtifact, Self.stderrFile)].compactMap { artifact, name in
            artifact.map { ($0, name) }
        }
        for (artifact, name) in record.artifacts.map({ ($0, $0.path) }) + streams {
            if artifact.store == .registry {
                switch place(artifact, at: name, under: root, replacing: true) {
                case .written: continue
                case .failed(let failure): failures.append((name, failure))
                case .notWritten(let problem):
                    throw .local("writing \(UntrustedText.quoted(name)) under \(directory): \(problem)")
                }
                continue
            }
            switch bytes(of: artifact, taskID: record.taskID, snapshot: snapshot) {
            case .failure(let failure):
                failures.append((name, failure))
            case .success(let bytes):
                if let problem = Self.write(bytes, to: name, under: root) {
                    throw .local("writing \(UntrustedText.quoted(artifact.path)) under \(directory): \(problem)")
                }
            }
        }
        return failures
    }

    /// Where a download writes the whole streams: names no /output file of a task is likely to hold.
    public static let stdoutFile = "dgrid-stdout", stderrFile = "dgrid-stderr"

    /// `bytes` at `path` (clean and relative) under the directory `root`; nil, or why not.
    static func write(_ bytes: [UInt8], to path: String, under root: Int32) -> String? {
        guard CheckpointPath.problem(path) == nil else { return "not a clean relative path" }
        return RelativeFiles.write(bytes, to: path, in: root, replacing: true)
    }
}

/// A file with no name yet in a directory (O_TMPFILE), given one only once its
/// content is right. Where O_TMPFILE is not supported it is a hidden,
/// exclusively created name, removed unless renamed into place.
private struct UnnamedFile {
    let fd: Int32
    let error: Int32
    private let root: Int32
    /// The temporary name, when O_TMPFILE was not to be had.
    private let temporary: String?

    init(in root: Int32) {
        self.root = root
        let unnamed = dgrid_openat_tmpfile(root)
        if unnamed >= 0 {
            (fd, error, temporary) = (unnamed, 0, nil)
            return
        }
        let name = ".dgrid-fetch.\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
        let named = openat(root, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        (fd, error, temporary) = (named, named >= 0 ? 0 : errno, named >= 0 ? name : nil)
    }

    /// Names it `name` in `parent`; nil, or why not.
    func link(as name: String, in parent: Int32) -> String? {
        if let temporary {
            return renameat(root, temporary, parent, name) == 0 ? nil : errnoText(errno)
        }
        let result = dgrid_link_tmpfile(fd, parent, name)
        return result == 0 ? nil : errnoText(-result)
    }

    /// Closes it; a temporary name still there (not renamed) goes.
    func discard() {
        if fd >= 0 { close(fd) }
        if let temporary { unlinkat(root, temporary, 0) }
    }
}
