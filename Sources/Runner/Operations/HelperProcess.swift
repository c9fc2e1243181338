import CShims
import Glibc
import Sandbox

/// Runs a helper binary with `input` on its stdin and a deadline: past it the
/// child is killed (SIGKILL) and reaped, so a helper stuck on a receiver that
/// never answers cannot hold its caller (docs/ARCHITECTURE.md §12). The child
/// starts with no signal blocked and SIGTERM, SIGINT and SIGPIPE at their
/// defaults, whatever the calling thread has.
struct HelperProcess {
    struct Finished {
        /// The exit status, or 128 + the signal.
        let status: Int32
        let stdout: [UInt8]
        let stderr: [UInt8]
        /// Killed at the deadline.
        let timedOut: Bool
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// More than any helper's answer or error line.
    static let outputLimit = 64 * 1024

    /// `input` must fit the pipe's buffer (64 KiB): it is written whole before the answer is read.
    static func run(_ path: String, _ arguments: [String], input: [UInt8], deadlineSeconds: Double) -> Result<Finished, Failure> {
        func failed(_ message: String) -> Result<Finished, Failure> { .failure(Failure(description: message)) }
        guard input.count < 60 * 1024 else { return failed("a request of \(input.count) bytes is more than a pipe holds") }
        var inPipe: [Int32] = [-1, -1], out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        guard dgrid_pipe_cloexec(&inPipe) == 0 else { return failed("pipe: \(errnoText(errno))") }
        guard dgrid_pipe_cloexec(&out) == 0 else {
            inPipe.forEach { close($0) }
            return failed("pipe: \(errnoText(errno))")
        }
        guard dgrid_pipe_cloexec(&err) == 0 else {
            (inPipe + out).forEach { close($0) }
            return failed("pipe: \(errnoText(errno))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO)
        let spawned = HelperSpawn.spawn(path, arguments, actions: &actions)
        close(inPipe[0]); close(out[1]); close(err[1])
        guard spawned.error == 0 else {
            close(inPipe[1]); close(out[0]); close(err[0])
            return failed("cannot run \(path): \(errnoText(spawned.error))")
        }
        let pid = spawned.pid
        // Fits the pipe: no reader needed while it is written.
        var offset = 0
        while offset < input.count {
            let n = input[offset...].withUnsafeBytes { Glibc.write(inPipe[1], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            offset += n
        }
        close(inPipe[1])
        let deadline = Clock.monotonicMilliseconds() + deadlineSeconds * 1000
        let (stdout, stderr, timedOut) = drain(out[0], err[0], until: deadline)
        close(out[0]); close(err[0])
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return .success(Finished(status: signal == 0 ? (status >> 8) & 0xff : 128 + signal, stdout: stdout, stderr: stderr, timedOut: timedOut))
    }

    /// Both pipes read until they close or the deadline passes.
    private static func drain(_ out: Int32, _ err: Int32, until deadline: Double) -> ([UInt8], [UInt8], Bool) {
        var buffers: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: out, events: Int16(POLLIN), revents: 0), pollfd(fd: err, events: Int16(POLLIN), revents: 0)]
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while fds.contains(where: { $0.fd >= 0 }) {
            let left = deadline - Clock.monotonicMilliseconds()
            guard left > 0 else { return (buffers[0], buffers[1], true) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(left.rounded(.up), 60_000)))
            if ready < 0 { if errno == EINTR { continue } else { break } }
            for index in fds.indices where fds[index].fd >= 0 && fds[index].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fds[index].fd, $0.baseAddress, $0.count) }
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    fds[index].fd = -1
                } else if buffers[index].count < outputLimit {
                    buffers[index] += chunk[0..<n]
                }
            }
        }
        return (buffers[0], buffers[1], false)
    }
}
