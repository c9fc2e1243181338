import Foundation
import Sandbox

/// One checkpointing task's run on this worker (docs/ARCHITECTURE.md §10): its
/// `/checkpoint` (a size-capped tmpfs only the worker and the sandbox reach),
/// the latest checkpoint restored into it before the task starts, a snapshot
/// every interval — copied while the cgroup freezer holds every process of
/// the task, then published — and a last one when the worker stops. Progress
/// the task writes to `/checkpoint/progress` is read every second.
final class CheckpointSession: @unchecked Sendable {
    let taskID: String
    let attempt: Int
    let interval: Double
    let capacity: ByteCount
    let freezer = SandboxFreezer()
    private let store: CheckpointStore
    private let condition = NSCondition()
    private var scratch: ScratchVolume?
    /// The ref as this attempt last moved it.
    private var previous: GitOID?
    private var stopped = false
    private var thread: Thread?
    /// A snapshot is being taken (the interval's, or the last one).
    private let taking = NSLock()

    /// The checkpoint restored at start, when there was one.
    private(set) var resumed = false
    var onProgress: (TaskProgress) -> Void = { _ in }
    /// What became of the latest checkpoint when the task started.
    var onRestore: (Restore) -> Void = { _ in }
    /// A snapshot published (milliseconds frozen, total), or why one was not.
    var onSnapshot: (Result<(frozenMs: Double, totalMs: Double, bytes: UInt64), GridError>) -> Void = { _ in }

    /// D-GRID's `checkpointing: true` names no interval: once a minute.
    static let defaultInterval = 60.0

    init(taskID: String, attempt: Int, interval: Double, capacity: ByteCount, connection: GridConnection) {
        self.taskID = taskID
        self.attempt = attempt
        self.interval = interval
        self.capacity = capacity
        store = CheckpointStore(connection: connection)
    }

    /// The interval a task asks for; nil when it does not checkpoint.
    static func interval(of task: TaskFile) -> Double? {
        switch task.checkpointing {
        case .every(let seconds)?: Double(seconds)
        case .enabled(true)?: defaultInterval
        case .enabled(false)?, nil: nil
        }
    }

    enum Restore {
        case none
        /// `milliseconds`: fetching, checking every digest and writing it back.
        case restored(files: Int, bytes: UInt64, milliseconds: Double)
        case refused(CheckpointRefusal)
    }

    /// `/checkpoint` for a task that runs as `owner`, with the task's latest
    /// checkpoint on `snapshot` in it. A checkpoint that cannot be restored is
    /// refused (the task starts afresh, the caller audits why); a host that
    /// cannot make the tmpfs (rootless) throws: the task goes to a worker that can.
    func prepare(owner: UserID, snapshot: GridSnapshot) throws(GridError) -> (SandboxVolume, Restore) {
        let scratch: ScratchVolume
        do {
            scratch = try ScratchVolume(capacity: capacity, owner: owner)
        } catch {
            throw .local("\(error)")
        }
        self.scratch = scratch
        let volume = SandboxVolume(name: "checkpoint", source: .scratch(scratch, readOnly: false))
        let started = Date()
        guard let found = try store.latest(taskID: taskID, capacity: capacity.bytes, in: snapshot) else { return (volume, .none) }
        switch found {
        case .failure(let refusal):
            return (volume, .refused(refusal))
        case .success(let contents):
            if let refusal = contents.restore(into: scratch.descriptor, owner: owner) {
                // Half restored is worse than nothing: start from an empty /checkpoint.
                let fresh: ScratchVolume
                do { fresh = try ScratchVolume(capacity: capacity, owner: owner) } catch { throw .local("\(error)") }
                self.scratch = fresh
                return (SandboxVolume(name: "checkpoint", source: .scratch(fresh, readOnly: false)), .refused(refusal))
            }
            resumed = true
            return (volume, .restored(files: contents.files.count, bytes: contents.bytes, milliseconds: Date().timeIntervalSince(started) * 1000))
        }
    }

    /// Snapshots every `interval` from now until `stop`.
    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "checkpoint \(taskID)"
        self.thread = thread
        thread.start()
    }

    /// Stops the snapshots (the task ended: its result supersedes them).
    func stop() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }

    /// One snapshot now, while the task still runs (the worker is stopping).
    func snapshotNow() {
        take()
    }

    private func loop() {
        var next = Date().addingTimeInterval(interval)
        while true {
            let done = condition.withLock { () -> Bool in
                if !stopped { _ = condition.wait(until: min(next, Date().addingTimeInterval(1))) }
                return stopped
            }
            if done { return }
            readProgress()
            if Date() >= next {
                take()
                next = Date().addingTimeInterval(interval)
            }
        }
    }

    private func readProgress() {
        guard let scratch else { return }
        let fd = openat(scratch.descriptor, TaskProgress.fileName, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 256) }
        guard n > 0, let progress = TaskProgress(line: String(decoding: buffer[0..<n], as: UTF8.self)) else { return }
        onProgress(progress)
    }

    private func take() {
        guard let scratch else { return }
        taking.lock()
        defer { taking.unlock() }
        let started = Date()
        var frozenFor = 0.0
        let copied = freezer.whileFrozen { () -> Result<CheckpointContents, CheckpointRefusal> in
            let frozen = Date()
            defer { frozenFor = Date().timeIntervalSince(frozen) * 1000 }
            return CheckpointContents.read(from: scratch.descriptor, limit: capacity.bytes)
        }
        let contents: CheckpointContents
        switch copied {
        case .frozen(.success(let read)), .running(.success(let read)): contents = read
        case .frozen(.failure(let refusal)), .running(.failure(let refusal)):
            onSnapshot(.failure(.local("copying /checkpoint: \(refusal)")))
            return
        case .notRunning:
            return
        case .refused:
            onSnapshot(.failure(.local("the task's cgroup would not freeze within 2 s; no snapshot this time")))
            return
        }
        do {
            guard let commit = try store.publish(contents, taskID: taskID, attempt: attempt, previous: previous) else {
                onSnapshot(.failure(.local("\(CheckpointStore.refName(taskID)) moved: another attempt holds the task; no more snapshots")))
                stop()
                return
            }
            previous = commit
            onSnapshot(.success((frozenFor, Date().timeIntervalSince(started) * 1000, contents.bytes)))
        } catch {
            onSnapshot(.failure(error))
        }
    }
}
