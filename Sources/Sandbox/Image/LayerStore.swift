import Glibc
import Synchronization
import SandboxSupport

/// `$DGRID_HOME/layers/<diff_id hex>/`: each layer unpacked once, shared by
/// every run (overlayfs lowerdirs). This file is the only caller of the layer
/// unpacker (`Image/Unpack/`); everything else reaches layers through it.
///
/// **In-use contract** (between runs and `gc`): whoever uses a layer holds
/// `flock(LOCK_SH)` on `layers/<hex>.inuse` (a sibling file, never inside the
/// layer, which a run sees) for as long as it uses the directory — `lease(_:)`
/// does exactly that and `ImageResolver.resolve` returns the lease. `gc`
/// removes a layer only after taking `LOCK_EX | LOCK_NB` on the same file;
/// while any run holds its shared lock the layer stays. A lock taker checks
/// that the file it locked is still the one at that path (gc may unlink it),
/// and that the layer directory exists once the lock is held.
public final class LayerStore: Sendable {
    /// `.../layers`.
    public let directory: String

    public init(state: StateDirectory) throws(ImageError) {
        directory = try state.imageDirectory("layers")
    }

    public func path(for diffID: Digest) -> String {
        "\(directory)/\(diffID.hex)"
    }

    public func isUnpacked(_ diffID: Digest) -> Bool {
        FileIO.isDirectory(path(for: diffID))
    }

    /// Unpacks a verified layer blob to `layers/<diff_id>` unless it is there
    /// already. The unpacker checks the uncompressed stream against `diffID`
    /// and renames into place only on success, so a layer directory is always
    /// complete. Returns the report, or nil when nothing had to be done.
    package func unpack(blobPath: String, mediaType: String, diffID: Digest) throws(ImageError) -> UnpackReport? {
        if isUnpacked(diffID) { return nil }
        do {
            if let (uids, gids) = LayerNamespaceHelper.subordinateRanges() {
                let action = LayerNamespaceHelper.Action.unpack(blobPath: blobPath, mediaType: mediaType, diffID: diffID,
                                                                destination: path(for: diffID))
                switch try runHelper(action, uids: uids, gids: gids, what: "unpack layer \(diffID.short)") {
                case .unpacked(let report): return report
                case .unpackFailed(let error): throw error
                default: throw ImageError.layerHelper(what: "unpack layer \(diffID.short)", reason: "it answered another request")
                }
            }
            return try LayerUnpacker.unpack(blobPath: blobPath, mediaType: mediaType, expectedDiffID: diffID,
                                            destination: path(for: diffID))
        } catch let error as ImageError {
            throw error
        } catch let error as UnpackError {
            // Another process finished the same layer first: its copy passed the
            // same diff_id check, so it is as good as ours.
            if case .destinationExists = error, isUnpacked(diffID) { return nil }
            throw .unpack(error)
        } catch {
            throw .layerHelper(what: "unpack layer \(diffID.short)", reason: "\(error)")
        }
    }

    private func runHelper(_ action: LayerNamespaceHelper.Action, uids: SubordinateRange, gids: SubordinateRange,
                           what: String) throws(ImageError) -> LayerNamespaceHelper.Outcome {
        do {
            return try LayerNamespaceHelper.run(action, uids: uids, gids: gids)
        } catch {
            throw .layerHelper(what: what, reason: error.reason)
        }
    }

    /// Takes the shared in-use lock on every layer, lowest first, and checks
    /// each directory exists. Hold the lease while the layers are mounted.
    public func lease(_ diffIDs: [Digest]) throws(ImageError) -> LayerLease {
        let lease = LayerLease()
        for diffID in diffIDs {
            let fd = try lockInUse(diffID.hex, exclusive: false)
            lease.add(fd)
            guard isUnpacked(diffID) else {
                lease.release()
                throw .layerNotUnpacked(diffID: diffID, path: path(for: diffID))
            }
        }
        return lease
    }

    /// Opens and locks `<name>.inuse`; retries when gc unlinked the file we
    /// locked. Returns the fd, or nil when `exclusive` and it is held.
    private func lockInUse(_ name: String, exclusive: Bool) throws(ImageError) -> Int32 {
        let path = "\(directory)/\(name).inuse"
        while true {
            let fd = FileIO.open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw .system(operation: "open in-use lock", path: path, errno: errno) }
            let operation = exclusive ? LOCK_EX | LOCK_NB : LOCK_SH
            while flock(fd, operation) != 0 {
                let err = errno
                if err == EINTR { continue }
                close(fd)
                if err == EWOULDBLOCK { return -1 }
                throw .system(operation: "lock", path: path, errno: err)
            }
            var held = stat()
            var current = stat()
            if fstat(fd, &held) == 0, lstat(path, &current) == 0, held.st_ino == current.st_ino, held.st_dev == current.st_dev {
                return fd
            }
            close(fd)
        }
    }

    /// Entry names in the layers directory: `<hex>` layers, `<hex>.inuse`
    /// locks, the unpacker's and gc's temporaries.
    func names() throws(ImageError) -> [String] {
        guard let names = FileIO.list(directory) else { throw .system(operation: "list", path: directory, errno: errno) }
        return names.sorted()
    }

    enum Removal: Equatable {
        case removed, inUse
    }

    /// Removes layer `hex` unless a run holds it. The directory is first
    /// renamed away (a run never sees half a layer at the real name), then
    /// removed without following any symlink in it.
    func remove(hex: String) throws(ImageError) -> Removal {
        let fd = try lockInUse(hex, exclusive: true)
        guard fd >= 0 else { return .inUse }
        defer { close(fd) }
        let doomed = ".gc-\(hex)-\(FileIO.uniqueSuffix())"
        if rename("\(directory)/\(hex)", "\(directory)/\(doomed)") != 0 && errno != ENOENT {
            throw .system(operation: "rename for removal", path: "\(directory)/\(hex)", errno: errno)
        }
        try removeTemporary(doomed)
        unlink("\(directory)/\(hex).inuse")
        return .removed
    }

    /// Removes a lock file whose layer is gone, if nobody holds it.
    func removeStaleLock(hex: String) throws(ImageError) {
        let fd = try lockInUse(hex, exclusive: true)
        guard fd >= 0 else { return }
        if !FileIO.exists("\(directory)/\(hex)") {
            unlink("\(directory)/\(hex).inuse")
        }
        close(fd)
    }

    /// Removes `name` (a directory gc renamed away) below the layers directory,
    /// never following a symlink in it.
    func removeTemporary(_ name: String) throws(ImageError) {
        // Layers unpacked through the helper hold subordinate ids the user
        // cannot delete as itself: remove them the way they were made.
        guard let (uids, gids) = LayerNamespaceHelper.subordinateRanges() else {
            return try removeDirectoryTree(parent: directory, name: name)
        }
        switch try runHelper(.remove(parent: directory, name: name), uids: uids, gids: gids, what: "remove \(directory)/\(name)") {
        case .removed: return
        case .removeFailed(let operation, let path, let errno): throw .system(operation: operation, path: path, errno: errno)
        default: throw .layerHelper(what: "remove \(directory)/\(name)", reason: "it answered another request")
        }
    }
}

/// Removes `parent/name` and everything below it without following a symlink
/// (the unpacker's `removeTree`): layer trees and scanner output hold symlinks
/// an image author or a scanner chose.
func removeDirectoryTree(parent: String, name: String) throws(ImageError) {
    let dirFD = FileIO.open(parent, O_RDONLY | O_DIRECTORY)
    guard dirFD >= 0 else { throw .system(operation: "open", path: parent, errno: errno) }
    defer { close(dirFD) }
    let err = name.withCString { removeTree(in: dirFD, name: $0) }
    guard err == 0 else { throw .system(operation: "remove", path: "\(parent)/\(name)", errno: err) }
}

/// Shared in-use locks on a run's layers (see `LayerStore`). Keep it until the
/// sandbox has exited; `release()` (or dropping the last reference) lets `gc`
/// remove the layers again. The fds are close-on-exec, so a sandbox never
/// inherits them.
public final class LayerLease: Sendable {
    private let fds = Mutex<[Int32]>([])

    init() {}

    func add(_ fd: Int32) {
        fds.withLock { $0.append(fd) }
    }

    public func release() {
        let held = fds.withLock { held in
            defer { held.removeAll() }
            return held
        }
        for fd in held { close(fd) }
    }

    deinit {
        release()
    }
}
