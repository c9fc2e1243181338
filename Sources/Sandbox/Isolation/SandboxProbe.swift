import Glibc
import SandboxSupport

/// `dgrid doctor`'s proof that this host can set up a sandbox: one real sandbox
/// through the worker's own spawn path (`SandboxRunner`, the C shim,
/// dgrid-init), not a separate imitation of it. Its root is an overlay of two
/// empty layers under `$DGRID_HOME/run/doctor-<id>/`, with the default seccomp
/// filter, cgroup limits where the host has cgroups, and a volume as a task
/// gets one (root: an idmapped tmpfs `/output`; rootless: a read-only
/// `/inputs`). Its command does not exist: the shim reports each step's
/// failure as (stage, errno), so an exec that fails with "not found" proves
/// every step before it — namespaces, id maps, cgroup, overlay inside the
/// user namespace, pivot_root, no capabilities, no_new_privs, seccomp —
/// without a binary of our own inside, and nothing runs.
///
/// When a step fails the probe runs again without it where it can (no
/// limits after a cgroup failure, a plain directory root after an overlay
/// refusal), so one broken feature does not hide the state of the rest.
/// Plain function of its inputs, so the worker's periodic self-checks can
/// call it too.
public enum SandboxProbe {
    /// The command the probe "runs": absent from every probe root by construction.
    static let missingCommand = "/dgrid-doctor-probe-absent"

    public static func run(runner: SandboxRunner, state: StateDirectory, seccomp: SeccompFilter?) -> SandboxProbeReport {
        var runs: [SandboxProbeRun] = []
        let scratch: ProbeDirectory
        do {
            scratch = try ProbeDirectory(state: state)
        } catch {
            return SandboxProbeReport(runs: [], unavailable: error.description)
        }
        defer { scratch.remove() }

        var limits: ResourceLimits? = runner.hasCgroups
            ? ResourceLimits(memoryBytes: 64 << 20, cpus: try? CPUQuota(cpus: 0.5), pids: 32) : nil
        var overlay = true
        // At most three runs: with everything, then without what failed.
        for _ in 0..<3 {
            let run = once(runner: runner, directory: scratch, overlay: overlay, limits: limits, seccomp: seccomp)
            runs.append(run)
            guard let failed = run.failedAt else { break }
            if [.cgroupCreated, .cgroupJoined].contains(failed) && limits != nil {
                limits = nil
            } else if failed == .overlay && overlay {
                overlay = false
            } else {
                break
            }
        }
        return SandboxProbeReport(runs: runs, unavailable: nil)
    }

    private static func once(runner: SandboxRunner, directory: ProbeDirectory, overlay: Bool,
                             limits: ResourceLimits?, seccomp: SeccompFilter?) -> SandboxProbeRun {
        let root: SandboxRoot = overlay ? .layers(directory.layers) : .directory(directory.rootfs)
        var spec = SandboxSpec(root: root, command: [missingCommand])
        spec.seccomp = seccomp
        spec.timeoutSeconds = 30
        spec.outputLimit = 1024
        spec.overlayFallback = false
        spec.allowWithoutCgroupLimits = true
        if let limits { spec.limits = limits }
        var exercised = Set(SetupMilestone.allCases)
        if !overlay { exercised.remove(.overlay) }
        if limits == nil { exercised.subtract([.cgroupCreated, .cgroupJoined]) }
        if seccomp == nil { exercised.remove(.seccomp) }
        let scratchVolume: ScratchVolume?
        if geteuid() == 0 {
            // What a root worker gives every task: a writable, idmapped tmpfs.
            scratchVolume = try? ScratchVolume(capacity: ByteCount(bytes: 1 << 20), owner: spec.user)
            if let scratchVolume {
                spec.volumes = [SandboxVolume(name: "output", source: .scratch(scratchVolume, readOnly: false))]
            } else {
                exercised.remove(.volumes)
            }
        } else {
            scratchVolume = nil
            spec.volumes = [SandboxVolume(name: "inputs", source: .readOnly(path: directory.inputs))]
        }
        let failure: SandboxError?
        do {
            _ = try withExtendedLifetime(scratchVolume) { () throws(SandboxError) in try runner.run(spec) }
            // The command ran: something put it there. Every step worked all the same.
            failure = nil
        } catch {
            if case .commandNotFound = error { failure = nil } else { failure = error }
        }
        return SandboxProbeRun(overlay: overlay, withLimits: limits != nil, exercised: exercised, failure: failure)
    }
}

/// One probe sandbox: what it tried and where it stopped.
public struct SandboxProbeRun: Sendable {
    /// Its root was an overlay of layers (else a plain directory).
    public let overlay: Bool
    /// It had memory, CPU and pids limits (a cgroup).
    public let withLimits: Bool
    /// The steps this run took at all (a directory root mounts no overlay).
    public let exercised: Set<SetupMilestone>
    /// nil: every step up to the task's exec worked.
    public let failure: SandboxError?

    public init(overlay: Bool, withLimits: Bool, exercised: Set<SetupMilestone>, failure: SandboxError?) {
        self.overlay = overlay
        self.withLimits = withLimits
        self.exercised = exercised
        self.failure = failure
    }

    public var failedAt: SetupMilestone? { failure.map(SetupMilestone.failed(at:)) }

    public func passed(_ milestone: SetupMilestone) -> Bool {
        guard exercised.contains(milestone) else { return false }
        guard let failedAt else { return true }
        return milestone < failedAt
    }
}

/// Every probe run, first to last.
public struct SandboxProbeReport: Sendable {
    public let runs: [SandboxProbeRun]
    /// Why no probe could run at all (no run directory).
    public let unavailable: String?

    public init(runs: [SandboxProbeRun], unavailable: String? = nil) {
        self.runs = runs
        self.unavailable = unavailable
    }

    /// Some run got past `milestone`.
    public func passed(_ milestone: SetupMilestone) -> Bool { runs.contains { $0.passed(milestone) } }

    /// The error of the first run that stopped at `milestone`, when no run got past it.
    public func failure(at milestone: SetupMilestone) -> SandboxError? {
        guard !passed(milestone) else { return nil }
        return runs.first { $0.failedAt == milestone }?.failure
    }

    /// The earliest step a run stopped at before `milestone` (so `milestone` was not reached), if any.
    public func blocker(before milestone: SetupMilestone) -> (SetupMilestone, SandboxError)? {
        guard !passed(milestone) else { return nil }
        for run in runs {
            if let at = run.failedAt, at < milestone, let failure = run.failure { return (at, failure) }
        }
        return nil
    }

    /// The whole path worked in one run.
    public var reachedExec: Bool { runs.contains { $0.failure == nil } }

    /// Check `id`, whose step `milestone` no run reached: a run stopped earlier (fix the
    /// check blamed for that step first), or no probe ran at all.
    func notReached(_ id: HostCheckID, before milestone: SetupMilestone, paths: HostPaths = .host,
                    rootless: Bool = geteuid() != 0) -> HostCheck {
        if let (step, error) = blocker(before: milestone) {
            return .warn(id, "not reached: the probe sandbox stopped earlier, at \(step.summary) (\(error))",
                         fix: "fix \(NamespaceCheck.checkID(blamedFor: step, paths: paths, rootless: rootless).rawValue) first")
        }
        return .warn(id, "not tried: \(unavailable ?? "no probe sandbox ran")", fix: "fix state_directory first")
    }
}

/// `$DGRID_HOME/run/doctor-<id>/`: two empty layers, an empty rootfs directory
/// (with the mount points a directory root needs) and an empty `/inputs`
/// source, removed again when the probe is done.
private struct ProbeDirectory {
    let path: String
    let layers: [StoredLayer]
    let rootfs: String
    let inputs: String

    init(state: StateDirectory) throws(StateDirectoryError) {
        path = try state.directory("run/doctor-\(SandboxID.next())")
        var layers: [StoredLayer] = []
        for index in 0..<2 {
            let directory = path + "/layer\(index)"
            // What a stored layer is: a 0755 directory (the sandbox's ids are not ours).
            mkdir(directory, 0o755)
            chmod(directory, 0o755)
            layers.append(StoredLayer(diffID: Digest(of: Array("dgrid doctor probe layer \(index)".utf8)), directory: directory))
        }
        self.layers = layers
        rootfs = path + "/rootfs"
        inputs = path + "/inputs"
        for directory in [rootfs, inputs] + ["proc", "dev", "tmp", "sys", "inputs", "output"].map({ rootfs + "/" + $0 }) {
            mkdir(directory, 0o755)
            chmod(directory, 0o755)
        }
    }

    func remove() {
        guard let slash = path.lastIndex(of: "/") else { return }
        let parent = open(String(path[..<slash]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        defer { close(parent) }
        _ = removeTree(in: parent, name: String(path[path.index(after: slash)...]))
    }
}
