import CShims
import Glibc
import SandboxSupport

/// Takes what the task's output pipes hold, a bounded amount per call, so the
/// supervisor is back at its deadline check after each pipe's worth of bytes
/// however fast the task writes. Bytes past the capture's limit are dropped in
/// the kernel (spliced to /dev/null, no copy) and only counted. One per run,
/// used from the supervising thread only.
final class OutputDrain {
    /// At most this many bytes per stream per call: the size OutputPipe asks
    /// for, so one call empties a full pipe once and no more.
    static let budgetBytes = 1 << 20

    enum StreamState { case open, ended }

    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    /// Where past-the-limit bytes go; -1 when /dev/null could not be opened
    /// or refused a splice, and they are read into `buffer` instead.
    private var sink: Int32

    /// - Parameter sinkPath: where dropped bytes are spliced; tests pass a
    ///   device that refuses splice to exercise the copying fallback.
    init(sinkPath: String = "/dev/null") {
        sink = open(sinkPath, O_WRONLY | O_CLOEXEC)
    }

    deinit {
        buffer.deallocate()
        if sink >= 0 { close(sink) }
    }

    /// Moves up to `budget` bytes from `fd` (a non-blocking pipe) into `capture`.
    /// `.open` when the pipe is empty for now, the budget is spent or a signal
    /// interrupted (poll says when to come back); `.ended` at end of stream or
    /// on an error that reading again would only repeat.
    /// With a `watcher`, every byte is read (none spliced away) and shown to it.
    /// With a `spool`, every byte up to its capacity is kept there too.
    func take(from fd: Int32, into capture: inout OutputCapture, budget: Int = OutputDrain.budgetBytes,
              watcher: OutputLineWatcher? = nil, spool: (OutputSpool, OutputSpool.Stream)? = nil) -> StreamState {
        var taken = 0
        while taken < budget {
            let want = budget - taken
            let n: Int
            if capture.isFull && watcher == nil, let (spool, stream) = spool, spool.room(stream) > 0 {
                n = dgrid_splice_nonblock(fd, spool.fd(stream), min(want, spool.room(stream)))
                if n > 0 {
                    spool.spliced(n, stream)
                    capture.count(discarded: n)
                    taken += n
                    continue
                }
                if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    // A file that takes no more (a full disk): the rest goes where it went before.
                    spool.refuse(stream)
                    continue
                }
            } else if capture.isFull && sink >= 0 && watcher == nil {
                n = dgrid_splice_nonblock(fd, sink, want)
                if n > 0 {
                    capture.count(discarded: n)
                    taken += n
                    continue
                }
                if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    // A kernel or sink that cannot splice: copy and drop instead.
                    close(sink)
                    sink = -1
                    continue
                }
            } else {
                n = read(fd, buffer.baseAddress, min(buffer.count, want))
                if n > 0 {
                    let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                    watcher?.feed(chunk)
                    capture.append(chunk)
                    if let (spool, stream) = spool { spool.append(chunk, stream) }
                    taken += n
                    continue
                }
            }
            if n == 0 { return .ended }
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .open : .ended
        }
        return .open
    }
}
