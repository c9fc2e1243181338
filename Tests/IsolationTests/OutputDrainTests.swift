import CShims
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// The supervisor's per-wake-up read: never more than its budget, whatever
/// the pipe holds, and every byte counted whether kept or dropped.
@Suite(.unit) struct OutputDrainTests {
    /// A non-blocking pipe like OutputPipe's, filled with `bytes` bytes.
    private func filledPipe(_ bytes: Int) throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        try #require(dgrid_pipe_cloexec(&fds) == 0)
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        try #require(dgrid_set_pipe_size(fds[0], 1 << 20) >= bytes, "pipe too small for the test")
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: bytes)
        try #require(write(fds[1], chunk, chunk.count) == bytes)
        return (fds[0], fds[1])
    }

    @Test(arguments: ["/dev/null", "/dev/full"])
    func takesAtMostItsBudgetAndCountsEveryByte(sink: String) throws {
        let pipe = try filledPipe(768 * 1024)
        defer { close(pipe.read); close(pipe.write) }
        let drain = OutputDrain(sinkPath: sink)
        var capture = OutputCapture(limit: 1000)

        #expect(drain.take(from: pipe.read, into: &capture, budget: 256 * 1024) == .open)
        #expect(capture.captured.totalBytes == 256 * 1024, "one call stops at its budget")
        #expect(capture.captured.bytes == [UInt8](repeating: UInt8(ascii: "a"), count: 1000))

        #expect(drain.take(from: pipe.read, into: &capture, budget: 1 << 20) == .open)
        #expect(capture.captured.totalBytes == 768 * 1024, "the rest, dropped (\(sink)) but counted")
        #expect(drain.take(from: pipe.read, into: &capture) == .open, "empty for now is still open")
        #expect(capture.captured.bytes.count == 1000)
    }

    @Test func endOfStreamEndsIt() throws {
        let pipe = try filledPipe(5)
        defer { close(pipe.read) }
        close(pipe.write)
        let drain = OutputDrain()
        var capture = OutputCapture(limit: 0)
        #expect(drain.take(from: pipe.read, into: &capture) == .ended)
        #expect(capture.captured.totalBytes == 5 && capture.captured.bytes.isEmpty)
    }
}
