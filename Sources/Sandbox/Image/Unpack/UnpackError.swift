import Glibc
import SandboxSupport

/// Why a layer was not unpacked. Whatever the case, nothing of the layer is
/// left on disk. Each description is one line naming the layer (by its
/// expected diff_id), the entry and the reason, e.g.
/// `layer sha256:0123456789ab: entry '../etc/passwd': path leaves the layer ('..' component)`.
public enum UnpackError: Error, Equatable, Codable, CustomStringConvertible {
    /// Not a layer media type dgrid can unpack.
    case unsupportedMediaType(String)
    /// The destination already exists, either before we started or because
    /// another process finished the same layer first and won the final rename.
    /// Kept distinct so a caller can use that complete copy instead.
    case destinationExists(path: String)
    /// A host-side call failed outside any entry: opening the blob, creating
    /// the temporary directory, the final rename.
    case system(operation: String, path: String, errno: Int32)
    /// The blob's compression is not the one its media type declares.
    case compressionMismatch(layer: Digest, mediaType: LayerMediaType, found: String)
    /// libarchive could not read the stream: corrupt, truncated, not a tar, or
    /// an irregularity libarchive would skip and carry on from (we never do).
    case unreadable(layer: Digest, entry: String?, message: String)
    /// A hostile or impossible entry.
    case refused(layer: Digest, entry: String, reason: EntryRefusal)
    /// Creating an entry failed in the filesystem (no space, no permission...).
    case entryFailed(layer: Digest, entry: String, operation: String, errno: Int32)
    /// A bound from `UnpackLimits` was crossed; `entry` is the entry being
    /// read when it happened, if any.
    case limitExceeded(layer: Digest, entry: String?, limit: UnpackLimit)
    /// The uncompressed stream does not hash to the diff_id the config promised.
    case diffIDMismatch(expected: Digest, actual: Digest)

    public var description: String {
        switch self {
        case .unsupportedMediaType(let type):
            return "unsupported layer media type '\(UntrustedText.shown(bytes: Array(type.utf8)))': expected an OCI or Docker layer (tar, tar+gzip or tar+zstd)"
        case .destinationExists(let path):
            return "layer directory \(path) already exists (unpacked by another process?)"
        case .system(let operation, let path, let errno):
            return "\(operation) \(path): \(errnoText(errno))"
        case .compressionMismatch(let layer, let mediaType, let found):
            return "layer \(layer.short): media type says \(mediaType) but the blob is compressed with \(found)"
        case .unreadable(let layer, let entry, let message):
            return "layer \(layer.short): \(entry.map { "entry '\($0)': " } ?? "")unreadable tar stream: \(message)"
        case .refused(let layer, let entry, let reason):
            return "layer \(layer.short): entry '\(entry)': \(reason)"
        case .entryFailed(let layer, let entry, let operation, let errno):
            return "layer \(layer.short): entry '\(entry)': \(operation): \(errnoText(errno))"
        case .limitExceeded(let layer, let entry, let limit):
            return "layer \(layer.short): \(entry.map { "entry '\($0)': " } ?? "")\(limit)"
        case .diffIDMismatch(let expected, let actual):
            return "layer \(expected.short): uncompressed content hashes to \(actual), not the diff_id \(expected); refused"
        }
    }
}

/// Why one entry was refused. Hardlink targets reuse the path reasons.
public indirect enum EntryRefusal: Sendable, Equatable, Codable, CustomStringConvertible {
    case emptyName
    case absoluteName
    case leavesLayer
    /// The entry names the layer root (".", "./") but is not a directory.
    case replacesRoot(kind: String)
    case crossesSymlink(at: String)
    case crossesNonDirectory(at: String)
    case hardlinkTarget(target: String, EntryRefusal)
    /// Said of hardlink targets: they must exist earlier in the same layer.
    case missing
    case isDirectory
    case isLayerRoot
    /// `.wh.` followed by an empty name, "." or "..".
    case invalidWhiteout(name: String)
    /// `DIR/.wh..wh..opq` where DIR ended up not being a directory.
    case opaqueNotDirectory
    case idOutOfRange(Int64)
    case emptySymlinkTarget
    case unsupportedType(mode: UInt32)

    public var description: String {
        switch self {
        case .emptyName: return "empty name"
        case .absoluteName: return "absolute name (layer entries must be relative)"
        case .leavesLayer: return "path leaves the layer ('..' component)"
        case .replacesRoot(let kind): return "a \(kind) cannot replace the layer root"
        case .crossesSymlink(let at): return "path crosses a symlink at '\(at)'"
        case .crossesNonDirectory(let at): return "path crosses a non-directory at '\(at)'"
        case .hardlinkTarget(let target, let reason): return "hardlink target '\(target)': \(reason)"
        case .missing: return "does not exist earlier in this layer"
        case .isDirectory: return "is a directory"
        case .isLayerRoot: return "is the layer root"
        case .invalidWhiteout(let name): return "whiteout names '\(name)', which is not a file name"
        case .opaqueNotDirectory: return "opaque-directory marker for a path that is not a directory"
        case .idOutOfRange(let id): return "owner id \(id) out of range"
        case .emptySymlinkTarget: return "symlink with an empty target"
        case .unsupportedType(let mode): return "unsupported entry type 0o\(String(mode, radix: 8))"
        }
    }
}

/// Which bound of `UnpackLimits` was crossed, with its value.
public enum UnpackLimit: Sendable, Equatable, Codable, CustomStringConvertible {
    case layerBytes(UInt64)
    case apparentBytes(UInt64)
    case entries(Int)
    case pathBytes(Int)
    case pathDepth(Int)
    case symlinkTargetBytes(Int)
    case compressionRatio(UInt64)

    public var description: String {
        switch self {
        case .layerBytes(let n): return "uncompressed layer exceeds \(ByteCount(bytes: n)) (maxLayerBytes); refused as a possible decompression bomb"
        case .apparentBytes(let n): return "regular files add up to more than \(ByteCount(bytes: n)) (maxLayerBytes, counting sparse files at full size)"
        case .entries(let n): return "more than \(n) entries (maxEntries)"
        case .pathBytes(let n): return "name longer than \(n) bytes (maxPathBytes)"
        case .pathDepth(let n): return "path deeper than \(n) components (maxPathDepth)"
        case .symlinkTargetBytes(let n): return "symlink target longer than \(n) bytes (maxSymlinkTargetBytes)"
        case .compressionRatio(let n): return "uncompressed size exceeds \(n)× the blob (maxCompressionRatio)"
        }
    }
}
