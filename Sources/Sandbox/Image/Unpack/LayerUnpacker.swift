import CArchive
import CShims
import Glibc
import SandboxSupport

/// Turns one layer blob into one read-only layer directory (docs/ARCHITECTURE.md §5,
/// docs/THREATS.md "Unpacking"). Owns: media types, decompression and diff_id
/// verification in one streaming pass, confined creation of every entry,
/// overlayfs whiteouts, limits, and all-or-nothing placement.
///
/// Must never: create anything by path string or through archive_write_disk;
/// follow a symlink found in a layer; keep going after an entry libarchive
/// flags (it would skip the entry and carry on); leave a partial layer behind.
public enum LayerUnpacker {
    /// Unpacks the blob at `blobPath` into `destination`, which must not exist.
    ///
    /// The layer is built in a 0700 sibling directory (`.NAME.unpack-RANDOM`)
    /// and renamed into place only after the last entry and the diff_id check
    /// succeed; on any failure that directory is removed (without following
    /// any symlink in it) and nothing remains. If `destination` appears
    /// meanwhile (another process unpacked the same layer and won the rename),
    /// ours is discarded and `.destinationExists` is thrown: the caller decides
    /// whether that copy is acceptable.
    ///
    /// Each layer gets a directory of its own and runs stack them with
    /// overlayfs, so `.wh.NAME` becomes an overlay whiteout (a 0/0 character
    /// device) and `DIR/.wh..wh..opq` the xattr `user.overlay.opaque=y` (and `trusted.` as root);
    /// both need root (CAP_MKNOD, CAP_SYS_ADMIN).
    ///
    /// Blocking file I/O from start to end: call it from a thread that may
    /// block, not from the cooperative pool.
    public static func unpack(blobPath: String, mediaType: String, expectedDiffID: Digest, destination: String,
                              limits: UnpackLimits = .init(), options: UnpackOptions = .init()) throws(UnpackError) -> UnpackReport {
        let type = try LayerMediaType(parsing: mediaType)
        let (parentPath, base) = try split(destination)
        // The destination's parent is dgrid's own state directory, not layer
        // content, so opening it by path is fine; below it everything is fd-relative.
        let parent = open(parentPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { throw .system(operation: "open layer directory", path: parentPath, errno: errno) }
        defer { close(parent) }
        var info = stat()
        if fstatat(parent, base, &info, AT_SYMLINK_NOFOLLOW) == 0 { throw .destinationExists(path: destination) }

        let blob = open(blobPath, O_RDONLY | O_CLOEXEC)
        guard blob >= 0 else { throw .system(operation: "open layer blob", path: blobPath, errno: errno) }
        defer { close(blob) }
        guard fstat(blob, &info) == 0 else { throw .system(operation: "stat layer blob", path: blobPath, errno: errno) }
        _ = posix_fadvise(blob, 0, 0, POSIX_FADV_SEQUENTIAL)

        let temp = ".\(base).unpack-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        guard mkdirat(parent, temp, 0o700) == 0 else {
            throw .system(operation: "create temporary layer directory in", path: parentPath, errno: errno)
        }
        do throws(UnpackError) {
            let report = try extract(blob: blob, blobBytes: UInt64(info.st_size), type: type, expected: expectedDiffID,
                                     into: parent, temp: temp, limits: limits, options: options)
            try place(temp, as: base, in: parent, destination: destination)
            return report
        } catch {
            _ = removeTree(in: parent, name: temp)
            throw error
        }
    }

    private static func extract(blob: Int32, blobBytes: UInt64, type: LayerMediaType, expected: Digest, into parent: Int32,
                                temp: String, limits: UnpackLimits, options: UnpackOptions) throws(UnpackError) -> UnpackReport {
        let root = openat(parent, temp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw .system(operation: "open temporary layer directory", path: temp, errno: errno) }
        defer { close(root) }
        let stream: StreamPipeline
        do {
            stream = try StreamPipeline(DecompressedStream(fd: blob, mediaType: type, blobBytes: blobBytes, limits: limits))
        } catch {
            throw streamError(error, layer: expected, type: type, entry: nil)
        }
        let extraction = LayerExtraction(tree: ConfinedTree(root: root), limits: limits, options: options, diffID: expected)
        // pax names are UTF-8; in the "C" locale libarchive cannot convert them
        // and warns, and warnings are fatal here. This thread only, restored after.
        let utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil)
        let previous = utf8.map { uselocale($0) }
        defer {
            if let previous { uselocale(previous) }
            if let utf8 { freelocale(utf8) }
        }
        let entries = try TarEntries.read(stream, layer: expected, limits: limits) { (entry, tar) throws(EntryFailure) in
            try extraction.apply(entry, from: tar)
        }
        let digest: Digest, bytes: UInt64
        do {
            (digest, bytes) = try stream.finish()
        } catch {
            throw streamError(error, layer: expected, type: type, entry: nil)
        }
        guard digest == expected else { throw .diffIDMismatch(expected: expected, actual: digest) }
        var report: UnpackReport
        do {
            report = try extraction.finish()
        } catch {
            throw entryError(error, entry: ".", layer: expected, stream: stream, tar: nil)
        }
        report.entries = entries
        report.uncompressedBytes = bytes
        return report
    }

    /// Renames the finished layer into place, never over anything: a plain
    /// rename would silently replace an empty directory that appeared there.
    private static func place(_ temp: String, as base: String, in parent: Int32, destination: String) throws(UnpackError) {
        var result = dgrid_unpack_rename_noreplace(parent, temp, base)
        if result != 0 && errno == EINVAL {
            // A filesystem without RENAME_NOREPLACE: check first, then a plain
            // rename, which still fails on a non-empty directory.
            var info = stat()
            if fstatat(parent, base, &info, AT_SYMLINK_NOFOLLOW) == 0 { throw .destinationExists(path: destination) }
            result = renameat(parent, temp, parent, base)
        }
        guard result == 0 else {
            let err = errno
            throw err == EEXIST || err == ENOTEMPTY ? .destinationExists(path: destination)
                : .system(operation: "rename unpacked layer to", path: destination, errno: err)
        }
    }

    /// "a/b/c" → ("a/b", "c"); "c" → (".", "c"); trailing slashes ignored.
    private static func split(_ destination: String) throws(UnpackError) -> (String, String) {
        var path = Substring(destination)
        while path.count > 1 && path.hasSuffix("/") { path = path.dropLast() }
        let slash = path.lastIndex(of: "/")
        let base = slash.map { path[path.index(after: $0)...] } ?? path
        guard !base.isEmpty, base != ".", base != ".." else {
            throw .system(operation: "unpack layer to", path: destination, errno: EINVAL)
        }
        let parent = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        return (parent, String(base))
    }

    static func streamError(_ failure: StreamFailure, layer: Digest, type: LayerMediaType, entry: String?) -> UnpackError {
        switch failure {
        case .limit(let limit): return .limitExceeded(layer: layer, entry: entry, limit: limit)
        case .unreadable(let message): return .unreadable(layer: layer, entry: entry, message: "\(type) blob: \(message)")
        case .compressionMismatch(let found): return .compressionMismatch(layer: layer, mediaType: type, found: found)
        }
    }

    static func entryError(_ failure: EntryFailure, entry: String, layer: Digest, stream: StreamPipeline,
                           tar: OpaquePointer?) -> UnpackError {
        switch failure {
        case .refused(let reason): return .refused(layer: layer, entry: entry, reason: reason)
        case .limit(let limit): return .limitExceeded(layer: layer, entry: entry, limit: limit)
        case .system(let operation, let errno): return .entryFailed(layer: layer, entry: entry, operation: operation, errno: errno)
        case .at(let other, let inner): return entryError(inner, entry: other, layer: layer, stream: stream, tar: tar)
        case .archive:
            if let failure = stream.failure { return streamError(failure, layer: layer, type: stream.mediaType, entry: entry) }
            return .unreadable(layer: layer, entry: entry, message: tar.map(errorText) ?? "read failed")
        }
    }
}
