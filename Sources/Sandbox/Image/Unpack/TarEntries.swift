import CArchive
import Glibc
import SandboxSupport

/// Reads tar entries from a `StreamPipeline` with libarchive's tar reader
/// (ustar, pax, GNU) and hands each to a handler. The reader pulls the
/// stream's blocks through `archive_read_open` callbacks, so decompression,
/// hashing and unpacking share one pass over the data.
///
/// libarchive's habit of skipping a damaged entry and carrying on is not
/// followed: any status but OK (a warning, a retry, a failure) ends the layer.
enum TarEntries {
    /// Returns the number of entries read.
    static func read(_ stream: StreamPipeline, layer: Digest, limits: UnpackLimits,
                     handler: (OpaquePointer, OpaquePointer) throws(EntryFailure) -> Void) throws(UnpackError) -> Int {
        guard let tar = archive_read_new() else {
            throw .unreadable(layer: layer, entry: nil, message: "libarchive: out of memory")
        }
        defer { archive_read_free(tar) }
        archive_read_support_format_tar(tar)
        // Unretained: `stream` is this call's argument and outlives the reader,
        // which is freed before we return.
        let client = Unmanaged.passUnretained(stream).toOpaque()
        let opened = archive_read_open(tar, client, nil, { _, client, block in
            guard let client, let block else { return -1 }
            let stream = Unmanaged<StreamPipeline>.fromOpaque(client).takeUnretainedValue()
            guard let next = stream.next() else {
                // 0 is the end of the stream; a failure must not look like one.
                return stream.failure == nil ? 0 : -1
            }
            block.pointee = next.baseAddress
            return next.count
        }, nil)
        guard opened == ARCHIVE_OK else { throw failure(stream, tar, layer: layer, entry: nil) }

        var count = 0
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(tar, &entry)
            if status == ARCHIVE_EOF { return count }
            guard status == ARCHIVE_OK, let entry else {
                // After a warning the entry is filled in and worth naming.
                let name = status == ARCHIVE_WARN ? entry.map(entryName) : nil
                throw failure(stream, tar, layer: layer, entry: name)
            }
            count += 1
            guard count <= limits.maxEntries else {
                throw .limitExceeded(layer: layer, entry: entryName(entry), limit: .entries(limits.maxEntries))
            }
            do {
                try handler(entry, tar)
            } catch {
                throw LayerUnpacker.entryError(error, entry: entryName(entry), layer: layer, stream: stream, tar: tar)
            }
        }
    }

    /// A failure of the tar reader itself; the stream's own failure (a limit,
    /// a decompression error) comes first, since it is the cause.
    private static func failure(_ stream: StreamPipeline, _ tar: OpaquePointer, layer: Digest, entry: String?) -> UnpackError {
        if let failure = stream.failure {
            return LayerUnpacker.streamError(failure, layer: layer, type: stream.mediaType, entry: entry)
        }
        return .unreadable(layer: layer, entry: entry, message: errorText(tar))
    }

    /// The entry's name as stored, for messages.
    static func entryName(_ entry: OpaquePointer) -> String {
        guard let name = archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry) else { return "" }
        return UntrustedText.shown(bytes: bufferOf(name))
    }
}
