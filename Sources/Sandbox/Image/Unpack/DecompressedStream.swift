import CArchive
import Glibc
import SandboxSupport

/// Why the uncompressed stream stopped early.
enum StreamFailure: Error, Equatable {
    case limit(UnpackLimit)
    case unreadable(String)
    case compressionMismatch(found: String)
}

/// The uncompressed tar stream of one blob. libarchive only decompresses here
/// (format "raw", filters per media type); every block is hashed and counted
/// on its way to the tar reader, so the diff_id comes out of the same single
/// pass that unpacks, and the size limits stop a bomb before it is written.
/// `StreamPipeline` runs it on a thread of its own.
final class DecompressedStream {
    private let reader: OpaquePointer
    let mediaType: LayerMediaType
    private var hasher = DigestHasher()
    private let maxBytes: UInt64
    private let limitHit: UnpackLimit
    private var finished = false
    /// Set when `next()` returned nil because of a failure, not the end.
    private(set) var failure: StreamFailure?

    /// Bytes handed out so far.
    var byteCount: UInt64 { hasher.byteCount }

    /// Opens `fd` (the blob) and checks its compression against `mediaType`.
    init(fd: Int32, mediaType: LayerMediaType, blobBytes: UInt64, limits: UnpackLimits) throws(StreamFailure) {
        guard let reader = archive_read_new() else { throw .unreadable("libarchive: out of memory") }
        self.reader = reader
        self.mediaType = mediaType
        var cap = limits.maxLayerBytes
        var hit = UnpackLimit.layerBytes(limits.maxLayerBytes)
        if let ratio = limits.maxCompressionRatio {
            let (product, overflow) = max(blobBytes, 1).multipliedReportingOverflow(by: ratio)
            if !overflow && product < cap {
                cap = product
                hit = .compressionRatio(ratio)
            }
        }
        maxBytes = cap
        limitHit = hit
        // Both filters are registered whatever the media type, so a mislabelled
        // blob is named in the error instead of failing as "not a tar".
        archive_read_support_filter_gzip(reader)
        archive_read_support_filter_zstd(reader)
        archive_read_support_format_raw(reader)
        var header: OpaquePointer?
        guard archive_read_open_fd(reader, fd, 1 << 20) == ARCHIVE_OK,
              archive_read_next_header(reader, &header) == ARCHIVE_OK else {
            throw .unreadable(errorText(reader))
        }
        // The last filter is always "none" (the file itself); a second gzip
        // layer inside the first would show up as one more.
        let count = archive_filter_count(reader)
        let codes = (0..<max(count - 1, 0)).map { archive_filter_code(reader, $0) }
        let expected: [Int32]
        switch mediaType {
        case .tar: expected = []
        case .tarGzip: expected = [ARCHIVE_FILTER_GZIP]
        case .tarZstd: expected = [ARCHIVE_FILTER_ZSTD]
        }
        guard codes == expected else {
            let names = (0..<max(count - 1, 0)).map { archive_filter_name(reader, $0).map { String(cString: $0) } ?? "?" }
            throw .compressionMismatch(found: names.isEmpty ? "no compression" : names.joined(separator: " inside "))
        }
    }

    deinit {
        archive_read_free(reader)
    }

    /// The next block of the uncompressed stream, valid until the next call;
    /// nil at the end or on failure (then `failure` says why).
    func next() -> UnsafeRawBufferPointer? {
        guard !finished, failure == nil else { return nil }
        while true {
            var buffer: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let status = archive_read_data_block(reader, &buffer, &size, &offset)
            if status == ARCHIVE_EOF {
                finished = true
                return nil
            }
            guard status == ARCHIVE_OK else {
                failure = .unreadable(errorText(reader))
                return nil
            }
            guard let buffer, size > 0 else { continue }
            let block = UnsafeRawBufferPointer(start: buffer, count: size)
            guard UInt64(size) <= maxBytes - hasher.byteCount else {
                failure = .limit(limitHit)
                return nil
            }
            hasher.update(block)
            return block
        }
    }

    /// Reads the rest of the stream (what follows the tar's end marker is part
    /// of the diff_id too) and returns its digest, or the failure.
    func finish() throws(StreamFailure) -> Digest {
        while next() != nil {}
        if let failure { throw failure }
        return hasher.finalize()
    }
}

func errorText(_ archive: OpaquePointer) -> String {
    archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
}
