import CShims
import Glibc
import Sandbox

/// Whose fault it is that a claimed task could not start (docs/ARCHITECTURE.md §7,
/// "Host faults"). The task's fault is the same on every worker, so it is
/// published as the task's result (rejected or failed) and the task ends. A
/// host's fault is this worker's alone: the claim is given back and the worker
/// stops claiming until its self-check passes — one broken host must not drain
/// the queue into `failed/`. When unsure, the host: a task wrongly given back
/// is still ended by the host-fault cap (`AttemptBudget`); a task wrongly
/// failed is lost.
enum FaultOwner: Equatable, Sendable {
    case task
    case host

    /// An image the task named itself. The image the worker falls back to when
    /// the task names none is always the host's business.
    static func of(_ error: ImageError) -> FaultOwner {
        switch error {
        case .invalidReference, .invalidDigest:
            return .task  // malformed reference: refused everywhere
        case .notAllowlisted, .pinnedToOtherDigest:
            return .task  // refused by policy: the task asked for what may not run
        case .invalidConfig, .noMatchingPlatform:
            return .task  // the pinned image itself cannot run here or anywhere like here
        default:
            return .host  // allowlisted but missing or broken in this worker's store
        }
    }

    static func of(_ error: SandboxError) -> FaultOwner {
        switch error {
        case .commandNotFound, .invalidSpec:
            return .task  // the image has no /bin/sh, or the task's values cannot form a sandbox
        case .setup(let stage, let errno) where stage == Int32(DGRID_STAGE_VOLUME.rawValue) && errno == ENOTDIR:
            return .task  // the image put a symlink or a file where /inputs, /output or /checkpoint go
        default:
            return .host  // cgroups, mounts, id ranges, the run directory, seccomp install: this host
        }
    }
}

/// A task this worker could not start for a reason of its own.
struct HostFault: Equatable, Sendable {
    /// For the claim record and the node record, read by everyone: no host path.
    let published: String
    /// For the worker's log: the whole error.
    let detail: String
    /// What must pass before this worker claims again.
    let check: HealthCheck
}

/// The self-check an unhealthy worker runs, with backoff, before it claims
/// again (docs/ARCHITECTURE.md §7, "Health").
enum HealthCheck: Equatable, Sendable {
    /// The image resolves in this worker's store: allowlisted, pinned, present, every layer unpacked.
    case image(String)
    /// A trivial sandbox of the worker's default image can be set up. The
    /// default image, not the task's: a host whose sandboxes work again is
    /// healthy, and an image that breaks every host must not keep every host
    /// unhealthy (its task ends by the host-fault cap instead).
    case sandbox
    /// The default seccomp filter can be prepared.
    case seccomp
    /// The artifact registry answers and takes this host's pushes (`dgrid-registry artifact check`).
    case artifactRegistry
    /// The periodic self-checks pass again (`WorkerSelfCheck`: space, inodes, memory, cgroup, image).
    case periodic
}
