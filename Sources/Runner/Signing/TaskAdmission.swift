import Sandbox
import Trust

/// Why a task is refused by its principal's limits (docs/ARCHITECTURE.md §9): the
/// task's own doing, final (`tasks/rejected/` with this reason).
public enum AdmissionRefusal: Error, Equatable, CustomStringConvertible, Sendable {
    case image(who: String, image: String, allowed: [String])
    case overMaximum(who: String, what: String, asked: String, maximum: String)
    case queueFull(who: String, queued: Int, maximum: Int)
    case gridQueueFull(queued: Int, maximum: Int)
    case submissionRate(submitted: Int, maximum: Int)

    public var description: String {
        switch self {
        case .image(let who, let image, let allowed):
            "\(who) may not run image \(UntrustedText.quoted(image, limit: 120)) (allowed: \(allowed.map { UntrustedText.quoted($0, limit: 80) }.joined(separator: ", ")))"
        case .overMaximum(let who, let what, let asked, let maximum):
            "asks for \(what) \(asked); \(who) may use at most \(maximum)"
        case .queueFull(let who, let queued, let maximum):
            "\(who) has \(queued) tasks queued, at most \(maximum) allowed (max_queued_tasks): wait for some to run"
        case .gridQueueFull(let queued, let maximum):
            "the grid's queue holds \(queued) tasks, at most \(maximum) allowed (max_queue): wait for some to run"
        case .submissionRate(let submitted, let maximum):
            "\(submitted) tasks submitted in the last minute, at most \(maximum) allowed (max_submissions_per_minute): try again in a minute"
        }
    }

    /// How a principal is named in refusals; unsigned tasks share one name.
    static func who(_ principal: String?) -> String {
        principal.map { "principal " + UntrustedText.quoted($0, limit: 64) } ?? "an unsigned task"
    }
}

/// The per-task part of a principal's limits: allowed images and per-task maxima
/// (docs/ARCHITECTURE.md §9). Checked by the worker once the signature holds and by
/// `dgrid submit` up front, in the same words. Counted limits (rates,
/// concurrency, queue length) are `QuotaBook`'s.
public struct TaskAdmission: Sendable {
    public let policy: TrustPolicy
    /// What a task naming no image runs on, and the resources one naming none gets.
    public let defaultImage: String
    public let defaults: TaskResources

    public init(policy: TrustPolicy, defaultImage: String, defaults: TaskResources) {
        self.policy = policy
        self.defaultImage = defaultImage
        self.defaults = defaults
    }

    /// With the default image and resources a worker of `settings` gives a task that names none.
    public init(policy: TrustPolicy, settings: GridSettings) {
        self.init(policy: policy, defaultImage: settings.defaultImage,
                  defaults: TaskResources(cpus: settings.defaultCPUs, memoryBytes: settings.defaultMemoryBytes, pids: settings.defaultPids))
    }

    /// `task` as it may run for `principal`: refused when it names an image or asks
    /// for more than the principal may; a resource it leaves to the worker is
    /// held to the principal's maximum where the worker's default is higher.
    public func admit(_ task: TaskFile, principal: String?) throws(AdmissionRefusal) -> TaskFile {
        let limits = policy.limits(for: principal)
        let who = AdmissionRefusal.who(principal)
        let image = task.image ?? defaultImage
        if let allowed = limits.images, !allowed.contains(where: { GlobPattern.matches($0, image) }) {
            throw .image(who: who, image: image, allowed: allowed)
        }
        var admitted = task
        if let maximum = limits.maxTimeoutSeconds, task.timeoutSeconds > maximum {
            throw .overMaximum(who: who, what: "timeout_seconds", asked: "\(task.timeoutSeconds)", maximum: "\(maximum)")
        }
        if let maximum = limits.maxCPUs {
            if let asked = task.resources.cpus, asked > maximum {
                throw .overMaximum(who: who, what: "cpus", asked: "\(asked)", maximum: "\(maximum)")
            }
            if task.resources.cpus == nil { admitted.resources.cpus = min(defaults.cpus ?? maximum, maximum) }
        }
        if let maximum = limits.maxMemoryBytes {
            if let asked = task.resources.memoryBytes, asked > maximum {
                throw .overMaximum(who: who, what: "memory", asked: "\(asked) bytes", maximum: "\(maximum) bytes")
            }
            if task.resources.memoryBytes == nil { admitted.resources.memoryBytes = min(defaults.memoryBytes ?? maximum, maximum) }
        }
        if let maximum = limits.maxPids {
            if let asked = task.resources.pids, asked > maximum {
                throw .overMaximum(who: who, what: "pids", asked: "\(asked)", maximum: "\(maximum)")
            }
            if task.resources.pids == nil { admitted.resources.pids = min(defaults.pids ?? maximum, maximum) }
        }
        return admitted
    }
}
