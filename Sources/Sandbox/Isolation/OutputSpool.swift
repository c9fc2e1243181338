import CShims
import Glibc
import SandboxSupport

/// A task's whole stdout and stderr, up to `capacity` bytes each, kept in
/// unnamed files (O_TMPFILE) under a directory of the caller's
/// (docs/ARCHITECTURE.md §10): what the record's cap cuts off is still there for
/// the caller to keep as an artifact. Past the capture the bytes are spliced
/// from the pipe into the file (no copy through userspace), as they were
/// spliced to /dev/null before; past `capacity` they are dropped and counted.
/// Nothing is left on disk: the files have no name.
public final class OutputSpool: @unchecked Sendable {
    public enum Stream: Int, Sendable { case stdout = 0, stderr = 1 }

    private let fds: [Int32]
    public let capacity: Int
    private var written = [0, 0]
    /// A stream whose file refused a write: kept no further (its size says how far it got).
    private var failed = [false, false]

    public init(directory: String, capacity: Int) throws(SandboxError) {
        var fds: [Int32] = []
        for _ in 0..<2 {
            let fd = dgrid_open_tmpfile(directory)
            guard fd >= 0 else {
                fds.forEach { close($0) }
                throw .volume("an unnamed file in \(directory) for the task's output: \(errnoText(-fd))")
            }
            fds.append(fd)
        }
        self.fds = fds
        self.capacity = capacity
    }

    deinit { fds.forEach { close($0) } }

    func fd(_ stream: Stream) -> Int32 { fds[stream.rawValue] }

    /// Bytes the stream may still take.
    func room(_ stream: Stream) -> Int {
        failed[stream.rawValue] ? 0 : max(0, capacity - written[stream.rawValue])
    }

    /// Copies what fits of `chunk`.
    func append(_ chunk: UnsafeRawBufferPointer, _ stream: Stream) {
        var offset = 0
        let count = min(chunk.count, room(stream))
        while offset < count {
            let n = write(fds[stream.rawValue], chunk.baseAddress! + offset, count - offset)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                failed[stream.rawValue] = true
                return
            }
            offset += n
        }
        written[stream.rawValue] += count
    }

    /// `count` bytes went into the file by splice.
    func spliced(_ count: Int, _ stream: Stream) { written[stream.rawValue] += count }

    /// A splice into the file failed: keep no more of this stream.
    func refuse(_ stream: Stream) { failed[stream.rawValue] = true }

    /// Bytes kept of `stream`.
    public func size(_ stream: Stream) -> Int { written[stream.rawValue] }

    /// The unnamed file holding `stream`, for a helper to read it without a copy
    /// (the registry store, docs/ARCHITECTURE.md §10); still the spool's to close.
    public func descriptor(_ stream: Stream) -> Int32 { fds[stream.rawValue] }

    /// Reads `stream` back from its start, a chunk at a time; false when a read failed.
    public func read(_ stream: Stream, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        FileChunks.read(fds[stream.rawValue], size: UInt64(written[stream.rawValue]), body) == nil
    }
}
