import CShims
import Glibc
import SandboxSupport

/// The parent's handle on a sandbox's pid 1 and the pipes the shim opened.
final class ChildProcess {
    let pid: pid_t
    let pidfd: Int32
    private var syncFd: Int32
    private let errorFd: Int32
    let statusFd: Int32
    private(set) var reaped = false

    init(_ child: dgrid_child) {
        pid = child.pid
        pidfd = child.pidfd
        syncFd = child.sync_fd
        errorFd = child.error_fd
        statusFd = child.status_fd
    }

    /// Lets the child go on past its sync point, handing it `trees` (the
    /// detached lower mounts of its root) with the go byte.
    func release(sending trees: [Int32] = []) throws(SandboxError) {
        let sent = trees.withUnsafeBufferPointer { dgrid_send_go(syncFd, $0.baseAddress, Int32($0.count)) }
        close(syncFd)
        syncFd = -1
        guard sent == 0 else { throw .spawn(errno: -sent) }
    }

    /// Blocks until the task has exec'd (EOF, nil) or setup failed (stage, errno).
    func readSetupError() -> dgrid_setup_error? {
        var failure = dgrid_setup_error()
        let size = MemoryLayout<dgrid_setup_error>.size
        var got = 0
        while got < size {
            let n = withUnsafeMutableBytes(of: &failure) { buffer in
                read(errorFd, buffer.baseAddress.map { $0 + got }, size - got)
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        return got == size ? failure : nil
    }

    /// Reaps pid 1; returns its raw wait status and resource usage.
    func reap(blocking: Bool) -> (status: Int32, usage: rusage)? {
        guard !reaped else { return nil }
        var status: Int32 = 0
        var usage = rusage()
        while true {
            let r = wait4(pid, &status, blocking ? 0 : WNOHANG, &usage)
            if r < 0 && errno == EINTR { continue }
            if r == pid {
                reaped = true
                return (status, usage)
            }
            return nil
        }
    }

    func kill() {
        if !reaped { _ = Glibc.kill(pid, SIGKILL) }
    }

    func killAndReap() {
        kill()
        _ = reap(blocking: true)
    }

    deinit {
        if !reaped { killAndReap() }
        if syncFd >= 0 { close(syncFd) }
        close(errorFd)
        close(statusFd)
        close(pidfd)
    }
}
