import CShims
import Glibc
import SandboxSupport

/// A pipe for one of the task's output streams. The write end goes to the
/// child; the parent reads the other end without blocking.
final class OutputPipe {
    let readEnd: Int32
    private(set) var writeEnd: Int32

    init() throws(SandboxError) {
        var fds: [Int32] = [-1, -1]
        guard dgrid_pipe_cloexec(&fds) == 0 else { throw .spawn(errno: errno) }
        readEnd = fds[0]
        writeEnd = fds[1]
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        // A bigger pipe means fewer wakeups when a task floods its output.
        _ = dgrid_set_pipe_size(readEnd, 1 << 20)
    }

    func closeWriteEnd() {
        if writeEnd >= 0 {
            close(writeEnd)
            writeEnd = -1
        }
    }

    deinit {
        close(readEnd)
        closeWriteEnd()
    }
}

/// Keeps the first `limit` bytes of a stream and counts the rest.
struct OutputCapture {
    let limit: Int
    private(set) var kept: [UInt8] = []
    private(set) var total: UInt64 = 0

    init(limit: Int) {
        self.limit = limit
        kept.reserveCapacity(min(limit, 64 * 1024))
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        total += UInt64(chunk.count)
        let room = limit - kept.count
        if room > 0 {
            kept.append(contentsOf: chunk.prefix(room))
        }
    }

    /// True once the first `limit` bytes are kept: the rest need only be counted.
    var isFull: Bool { kept.count >= limit }

    /// Counts bytes that were dropped unread because the capture is full.
    mutating func count(discarded: Int) {
        total += UInt64(discarded)
    }

    var captured: CapturedOutput { CapturedOutput(bytes: kept, totalBytes: total) }
}
