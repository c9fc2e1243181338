import Glibc
import SandboxSupport

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
/// output with a cap (a flood never grows our memory) and a budget per pass (a
/// flood never keeps the loop from its clock), enforces the deadline by
/// killing the whole tree, and reaps pid 1.
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
    /// Sees every line of stdout (`SandboxSpec.stdoutWatcher`).
    var stdoutWatcher: OutputLineWatcher? = nil
    /// Keeps the whole of both streams (`SandboxSpec.outputSpool`).
    var spool: OutputSpool? = nil

    /// How often the group's OOM state is read while the task runs.
    private let oomPollNanoseconds: UInt64 = 100_000_000

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
        // No OOM in the first 100 ms is worth a cgroup read on every short run.
        var nextOOMCheck = Clock.monotonicNanoseconds() + oomPollNanoseconds
        var drainDeadline: UInt64?
        let drain = OutputDrain()

        // Every pass checks the clock before it waits and takes a bounded
        // amount after: a task that keeps its pipes full makes poll return at
        // once, forever, so a deadline checked only on a quiet poll would
        // never come.
        while outOpen || errOpen || waitResult == nil {
            let now = Clock.monotonicNanoseconds()
            var wakeAt: UInt64?
            if let drainDeadline {
                if now >= drainDeadline { break }
                wakeAt = drainDeadline
            } else {
                if let deadline, !timedOut {
                    if now >= deadline {
                        // SIGKILL to pid 1 takes the whole pid namespace with it (stopped,
                        // traced and setsid'd processes included); the cgroup kill
                        // catches anything mid-fork.
                        timedOut = true
                        killTree()
                    } else {
                        wakeAt = deadline
                    }
                }
                if watchOOM && !oomHandled {
                    if now >= nextOOMCheck {
                        nextOOMCheck = now + oomPollNanoseconds
                        if group?.stats().oomKilled == true {
                            oomHandled = true
                            killTree()
                        }
                    }
                    if !oomHandled { wakeAt = min(wakeAt ?? nextOOMCheck, nextOOMCheck) }
                }
            }

            var fds = [
                pollfd(fd: outOpen ? stdout.readEnd : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: errOpen ? stderr.readEnd : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: waitResult == nil ? process.pidfd : -1, events: Int16(POLLIN), revents: 0),
            ]
            let timeoutMs = wakeAt.map { Self.milliseconds(until: $0, from: now) } ?? -1
            let ready = poll(&fds, nfds_t(fds.count), timeoutMs)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if fds[0].revents != 0 { outOpen = drain.take(from: stdout.readEnd, into: &out, watcher: stdoutWatcher, spool: spool.map { ($0, .stdout) }) == .open }
            if fds[1].revents != 0 { errOpen = drain.take(from: stderr.readEnd, into: &err, spool: spool.map { ($0, .stderr) }) == .open }
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
