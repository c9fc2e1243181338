import Glibc

/// What the supervisor saw while the task ran.
struct SupervisedEnd {
    var stdout: CapturedOutput
    var stderr: CapturedOutput
    var timedOut: Bool
    /// The task's raw wait status as pid 1 reported it, when it did.
    var taskStatus: Int32?
    var pid1ExitCode: Int32
    var pid1Signal: Int32
    var rusageCPUMicroseconds: UInt64
    var rusageMaxRSSBytes: UInt64
}

/// One poll loop over the task's stdout, stderr and pid 1's pidfd: drains the
/// output with a cap (a flood never grows our memory), enforces the deadline
/// by killing the whole tree, and reaps pid 1.
struct Supervisor {
    let process: ChildProcess
    let stdout: OutputPipe
    let stderr: OutputPipe
    let limit: Int
    let deadline: UInt64?
    let group: SandboxCgroup?
    /// With a memory limit, an OOM kill anywhere in the tree ends the whole run
    /// (v2's memory.oom.group, done by hand so v1 behaves the same).
    let watchOOM: Bool

    private let oomPollMilliseconds: Int32 = 100

    /// After pid 1 is gone the kernel has already killed the namespace, so the
    /// pipes hit EOF at once; this bounds the wait if something still holds them.
    private let drainGraceNanoseconds: UInt64 = 2_000_000_000

    func run() -> SupervisedEnd {
        var out = OutputCapture(limit: limit)
        var err = OutputCapture(limit: limit)
        var outOpen = true, errOpen = true
        var waitResult: (status: Int32, usage: rusage)?
        var timedOut = false
        var oomHandled = false
        var drainDeadline: UInt64?
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { buffer.deallocate() }

        while outOpen || errOpen || waitResult == nil {
            var fds = [
                pollfd(fd: outOpen ? stdout.readEnd : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: errOpen ? stderr.readEnd : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: waitResult == nil ? process.pidfd : -1, events: Int16(POLLIN), revents: 0),
            ]
            let now = Clock.monotonicNanoseconds()
            var timeoutMs: Int32 = -1
            if let drainDeadline {
                timeoutMs = Self.milliseconds(until: drainDeadline, from: now)
            } else if let deadline, !timedOut {
                timeoutMs = Self.milliseconds(until: deadline, from: now)
            }
            let pollingOOM = watchOOM && !oomHandled && drainDeadline == nil
            if pollingOOM && (timeoutMs < 0 || timeoutMs > oomPollMilliseconds) {
                timeoutMs = oomPollMilliseconds
            }
            let ready = poll(&fds, nfds_t(fds.count), timeoutMs)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 {
                if let drainDeadline {
                    if Clock.monotonicNanoseconds() >= drainDeadline { break }
                    continue
                }
                if let deadline, !timedOut, Clock.monotonicNanoseconds() >= deadline {
                    // SIGKILL to pid 1 takes the whole pid namespace with it (stopped,
                    // traced and setsid'd processes included); the cgroup kill
                    // catches anything mid-fork.
                    timedOut = true
                    killTree()
                } else if pollingOOM, group?.stats().oomKilled == true {
                    oomHandled = true
                    killTree()
                }
                continue
            }
            if fds[0].revents != 0 { outOpen = Self.drain(stdout.readEnd, into: &out, buffer: buffer) }
            if fds[1].revents != 0 { errOpen = Self.drain(stderr.readEnd, into: &err, buffer: buffer) }
            if fds[2].revents != 0, let result = process.reap(blocking: false) {
                waitResult = result
                drainDeadline = Clock.monotonicNanoseconds() + drainGraceNanoseconds
            }
        }
        if waitResult == nil {
            process.kill()
            waitResult = process.reap(blocking: true)
        }

        let status = waitResult?.status ?? 0
        let usage = waitResult?.usage ?? rusage()
        let cpuMicros = UInt64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000
            + UInt64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
        return SupervisedEnd(
            stdout: out.captured,
            stderr: err.captured,
            timedOut: timedOut,
            taskStatus: readTaskStatus(),
            pid1ExitCode: (status >> 8) & 0xff,
            pid1Signal: status & 0x7f,
            rusageCPUMicroseconds: cpuMicros,
            rusageMaxRSSBytes: UInt64(max(usage.ru_maxrss, 0)) * 1024
        )
    }

    private func killTree() {
        process.kill()
        group?.killAll()
    }

    /// Reads what is there now; returns false at EOF.
    private static func drain(_ fd: Int32, into capture: inout OutputCapture, buffer: UnsafeMutableRawBufferPointer) -> Bool {
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n > 0 {
                capture.append(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                continue
            }
            if n == 0 { return false }
            if errno == EINTR { continue }
            return errno == EAGAIN || errno == EWOULDBLOCK
        }
    }

    private func readTaskStatus() -> Int32? {
        var status: Int32 = 0
        let n = read(process.statusFd, &status, MemoryLayout<Int32>.size)
        return n == MemoryLayout<Int32>.size ? status : nil
    }

    private static func milliseconds(until deadline: UInt64, from now: UInt64) -> Int32 {
        guard deadline > now else { return 0 }
        return Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
    }
}
