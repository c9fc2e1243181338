import Foundation
import Sandbox

/// The worker's periodic self-checks (docs/ARCHITECTURE.md §12, "Health"): free
/// space and inodes under the state directory, available memory, a sandbox
/// cgroup that can still be made, the default image still whole. The Git
/// backend has its own (`GitCircuitBreaker`): while it is down every operation
/// fails at once, so nothing is claimed, and its probes are the check; the node
/// record says `git_circuit` once it can be published again. Each is cheap (a statvfs, one /proc read, a mkdir and
/// rmdir, an index read) so it runs every `self_check_seconds` from the
/// heartbeat thread. A failing one makes the worker unhealthy
/// (`WorkerHealth`): it stops claiming, says why in its node record, keeps
/// beating, and claims again once the same checks pass.
struct WorkerSelfCheck {
    enum Kind: String, Sendable, CaseIterable {
        case disk, inodes, memory, cgroup, image
    }

    struct Failure: Equatable, Sendable {
        let kind: Kind
        /// For the node record (read by everyone): no host path.
        let published: String
        /// For the log.
        let detail: String
    }

    let settings: GridSettings
    let runner: SandboxRunner
    /// Where to measure free space (the state directory); tests point it at a small tmpfs.
    var statePath: String { settings.state.path }
    var meminfoPath = "/proc/meminfo"

    /// The first failing check, in the order above; nil when all pass.
    func run(store: ImageStore?) -> Failure? {
        if let failure = space() { return failure }
        if let failure = memory() { return failure }
        if let problem = runner.cgroupProblem(), !settings.runWithoutCgroupLimits {
            return Failure(kind: .cgroup, published: "sandbox cgroups cannot be created on this host",
                           detail: problem + " (check the cgroup hierarchy and its delegation: dgrid doctor)")
        }
        if let problem = DefaultImageCheck(store: store, reference: settings.defaultImage).problem() {
            return Failure(kind: .image, published: "default " + problem.published,
                           detail: "default " + problem.published + " (" + problem.detail + ")")
        }
        return nil
    }

    /// Measured as `dgrid doctor` measures it (`DiskSpaceCheck.usage`); the floors are the worker's settings,
    /// whose defaults are doctor's failure thresholds.
    func space() -> Failure? {
        let usage: DiskSpaceCheck.Usage
        switch DiskSpaceCheck.usage(of: statePath) {
        case .success(let measured): usage = measured
        case .failure(let failure):
            return Failure(kind: .disk, published: "the state directory cannot be measured", detail: failure.description)
        }
        let free = usage.freeBytes
        if free < settings.minimumFreeDisk.bytes {
            return Failure(kind: .disk, published: "disk almost full: \(ByteCount(bytes: free)) free, \(settings.minimumFreeDisk) wanted",
                           detail: "\(statePath): \(ByteCount(bytes: free)) free, below min_free_disk \(settings.minimumFreeDisk); free space there")
        }
        // A filesystem without an inode table (btrfs) reports none at all.
        if usage.totalInodes > 0 && usage.freeInodes < settings.minimumFreeInodes {
            return Failure(kind: .inodes, published: "out of inodes: \(usage.freeInodes) free, \(settings.minimumFreeInodes) wanted",
                           detail: "\(statePath): \(usage.freeInodes) inodes free, below min_free_inodes \(settings.minimumFreeInodes); remove files there")
        }
        return nil
    }

    func memory() -> Failure? {
        guard let available = Self.memAvailable(meminfoPath) else { return nil }
        guard available < settings.minimumAvailableMemory.bytes else { return nil }
        return Failure(kind: .memory, published: "memory low: \(ByteCount(bytes: available)) available, \(settings.minimumAvailableMemory) wanted",
                       detail: "MemAvailable \(ByteCount(bytes: available)) below min_available_memory \(settings.minimumAvailableMemory)")
    }

    /// `MemAvailable` in bytes; nil when the file or the line is missing (old kernels, no /proc).
    static func memAvailable(_ path: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kib = UInt64(fields[1]) else { return nil }
            return kib * 1024
        }
        return nil
    }
}
