import Glibc

/// The first `size` bytes of a descriptor, a chunk at a time, read with pread
/// (the descriptor's offset is never moved, so a file shared with another
/// reader stays where it was). One loop for the output spool, the worker's
/// /output reads and the registry helper's hashing.
public enum FileChunks {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// pread failed with this errno, at this offset.
        case read(errno: Int32, at: UInt64)
        /// The file ended at this offset, before `size`.
        case ended(at: UInt64)

        public var description: String {
            switch self {
            case .read(let errno, let offset): "reading at byte \(offset): \(errnoText(errno))"
            case .ended(let offset): "it ended at byte \(offset)"
            }
        }
    }

    /// Calls `body` with each chunk in order; nil when all `size` bytes were read.
    public static func read(_ fd: Int32, size: UInt64, chunkSize: Int = 1 << 20,
                            _ body: (UnsafeRawBufferPointer) -> Void) -> Failure? {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { chunk.deallocate() }
        var offset: UInt64 = 0
        while offset < size {
            let n = pread(fd, chunk.baseAddress, Int(min(UInt64(chunk.count), size - offset)), off_t(offset))
            if n < 0, errno == EINTR { continue }
            if n < 0 { return .read(errno: errno, at: offset) }
            if n == 0 { return .ended(at: offset) }
            body(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
            offset += UInt64(n)
        }
        return nil
    }
}
