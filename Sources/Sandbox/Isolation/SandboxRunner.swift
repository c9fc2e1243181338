import CCap
import CShims
import Glibc
import SandboxSupport

/// Runs commands in sandboxes on this host: namespaces, pivot_root, no
/// capabilities, seccomp and cgroup limits (docs/ARCHITECTURE.md §2). One instance per
/// process; `run` is synchronous and may be called from several threads.
public final class SandboxRunner: Sendable {
    private let cgroups: CgroupDriver?
    private let cgroupsUnavailableReason: String
    private let capLastCap: Int32
    private let identity: SandboxIdentity
    private let state: StateDirectory

    /// - Parameter cgroups: nil when this host has no usable cgroup hierarchy;
    ///   `unavailableReason` then says why, for the error a limited run gets.
    public init(cgroups: CgroupDriver?, unavailableReason: String = "no usable cgroup hierarchy",
                state: StateDirectory = .forThisUser()) {
        self.state = state
        self.cgroups = cgroups
        self.cgroupsUnavailableReason = unavailableReason
        // libcap knows the running kernel's highest capability number.
        self.capLastCap = Int32(cap_max_bits()) - 1
        self.identity = geteuid() == 0 ? .root(HostIDPool.forThisHost()) : .rootless(RootlessIDMapping.forCurrentUser())
    }

    /// A runner with the cgroup driver this host supports, or none (with the reason).
    public static func forThisHost() -> SandboxRunner {
        do {
            return SandboxRunner(cgroups: try Cgroups.detectDriver())
        } catch {
            return SandboxRunner(cgroups: nil, unavailableReason: "\(error)")
        }
    }

    /// Whether runs with limits get a cgroup here (false: none is usable, see `forThisHost`).
    public var hasCgroups: Bool { cgroups != nil }

    /// Removes cgroups that a crashed dgrid left behind: those whose owner
    /// process (the pid that leads the sandbox id) is gone. Groups of live
    /// neighbours — other dgrid processes on this host — are kept. Their run
    /// directories (`StaleRunDirectories`) go the same way.
    @discardableResult
    public func removeStaleGroups() -> [String] {
        StaleRunDirectories.remove(state: state)
        return cgroups?.removeStale(keeping: SandboxID.ownerIsAlive) ?? []
    }

    public func run(_ spec: SandboxSpec) throws(SandboxError) -> Outcome {
        try Self.validate(spec)
        let sandboxID = SandboxID.next()
        try identity.check(spec.user)
        let root = switch spec.root {
        case .directory(let rootfs): try RunRoot.directory(try Self.resolveRootfs(rootfs), sandboxID: sandboxID, state: state)
        case .layers(let layers): try RunRoot.layers(layers, sandboxID: sandboxID, state: state)
        }

        var unenforced: [String] = []
        let group: SandboxCgroup?
        var limits = spec.limits
        if spec.freezer != nil { limits.freezable = true }
        // Freezing is wanted, never required: without cgroups a checkpoint is copied unfrozen.
        if limits.isEmpty || (cgroups == nil && spec.limits.isEmpty) {
            // Nothing to enforce: the pid namespace already takes the whole tree
            // down with pid 1, and rusage reports CPU time and peak memory.
            // Skipping the group saves a cgroup v1 attach (an RCU grace period).
            group = nil
        } else if let cgroups {
            do {
                group = try cgroups.create(name: sandboxID, limits: limits)
            } catch {
                throw .cgroup(error)
            }
        } else if spec.allowWithoutCgroupLimits {
            group = nil
            if spec.limits.memoryBytes != nil { unenforced.append("memory") }
            if spec.limits.cpus != nil { unenforced.append("cpus") }
            if spec.limits.pids != nil { unenforced.append("pids") }
        } else {
            throw .cgroupsRequired(reason: cgroupsUnavailableReason)
        }
        defer { try? group?.remove() }

        var outcome: Outcome
        if let refusal = root.refusal {
            outcome = try runFromCopy(spec, root: root, refusal: refusal, group: group)
        } else {
            do throws(SandboxError) {
                outcome = try spawnAndSupervise(spec, root: root, group: group)
            } catch {
                guard case .setup(let stage, let code) = error, stage == Int32(DGRID_STAGE_MOUNT_OVERLAY.rawValue),
                      root.overlay, spec.overlayFallback else { throw error }
                // Safe to run again: the task has not started. The overlay
                // mount is part of build_root, before pivot_root, the
                // privilege drop and the exec of dgrid-init (see spawn.c);
                // pid 1 writes a (stage, errno) pair only on its way to
                // _exit(125), and spawnAndSupervise has already reaped it.
                outcome = try runFromCopy(spec, root: root, refusal: errnoText(code), group: group)
            }
        }
        outcome.unenforcedLimits = unenforced
        return outcome
    }

    /// The fallback where overlay is refused (docs/ARCHITECTURE.md §5): the layers merged
    /// into a per-run copy and the run tried once more from there, as a plain
    /// rootfs (read-only unless the spec asks otherwise). The copy goes with
    /// the run directory when `run` returns.
    private func runFromCopy(_ spec: SandboxSpec, root: RunRoot, refusal: String,
                             group: SandboxCgroup?) throws(SandboxError) -> Outcome {
        let copy = try root.copy()
        defer { copy.remove() }
        // No mount-point layer under a copy: the volumes' mount points go into it.
        for volume in spec.volumes { _ = mkdir(copy.lowers[0] + "/" + volume.name, 0o755) }
        var outcome = try spawnAndSupervise(spec, root: copy, group: group)
        let count = root.lowers.count
        outcome.rootfsNote = "overlay refused (\(refusal)): ran from a copy of \(count) layer\(count == 1 ? "" : "s")"
        return outcome
    }

    private func spawnAndSupervise(_ spec: SandboxSpec, root: RunRoot,
                                   group: SandboxCgroup?) throws(SandboxError) -> Outcome {
        let initImage = try InitImage.shared()
        let stdoutPipe = try OutputPipe()
        let stderrPipe = try OutputPipe()
        let environment = SandboxDefaults.environment(spec.environment)
        let lease = try identity.lease()
        defer { lease?.release() }
        if lease == nil, spec.volumes.contains(where: { if case .scratch = $0.source { true } else { false } }) {
            throw .volume("a rootless sandbox clones its volumes itself, read-only; writable ones need a root worker")
        }
        let writableOverlay = root.overlay && spec.writableRootfs
        let prepared = PreparedConfig(
            root: root,
            stagingSize: writableOverlay ? spec.writableRootfsSize.bytes : 1 << 20,
            candidates: SandboxDefaults.executableCandidates(command: spec.command[0], environment: environment),
            argv: spec.command,
            envp: environment,
            workdir: spec.workingDirectory,
            hostname: spec.hostname,
            tmpData: "size=\(spec.tmpSize.bytes),mode=1777",
            masked: SandboxDefaults.maskedPaths,
            readonly: SandboxDefaults.readonlyPaths,
            volumes: spec.volumes
        )
        // Every sandbox has its own user namespace (docs/THREATS.md, T4).
        let namespaces = DGRID_CLONE_NEWNS | DGRID_CLONE_NEWPID | DGRID_CLONE_NEWUTS | DGRID_CLONE_NEWIPC
            | DGRID_CLONE_NEWNET | DGRID_CLONE_NEWUSER

        // cgroup v1: pid 1 moves itself in (no RCU grace period on the start
        // path, docs/ARCHITECTURE.md §3); v2: the parent adds it below.
        let joinFds: [Int32]
        do { joinFds = try group?.openJoinDescriptors() ?? [] } catch { throw .cgroup(error) }
        defer { joinFds.forEach { close($0) } }

        var child = dgrid_child()
        let started = Clock.monotonicNanoseconds()
        let spawnResult = prepared.withConfig(spec: spec, namespaces: Int32(namespaces),
                                              clonesLowers: lease == nil, becomeNamespaceRoot: identity.mapsARange,
                                              clearGroups: identity.mapsARange,
                                              capLastCap: capLastCap, stdoutFd: stdoutPipe.writeEnd,
                                              stderrFd: stderrPipe.writeEnd, initFd: initImage.descriptor,
                                              cgroupJoinFds: joinFds) { config in
            dgrid_spawn(config, &child)
        }
        stdoutPipe.closeWriteEnd()
        stderrPipe.closeWriteEnd()
        guard spawnResult == 0 else { throw .spawn(errno: -spawnResult) }
        let process = ChildProcess(child)

        // The child waits on the sync socket until it has its id maps, its
        // cgroup (v2; on v1 it joins by itself after the go byte) and (as
        // root) its root's trees.
        var idmapped = true
        var network: EgressNetwork?
        do throws(SandboxError) {
            var trees: [Int32] = []
            defer { trees.forEach { close($0) } }
            if let lease {
                try UserNamespaceMap.write(pid: child.pid, lease: lease)
                trees = try RootTrees.clone(root.lowers, forUserNamespaceOf: child.pid,
                                            readonly: root.overlay, idmapped: &idmapped)
                trees += try RootTrees.clone(spec.volumes, forUserNamespaceOf: child.pid)
            } else if case .rootless(let mapping) = identity {
                try UserNamespaceMap.write(pid: child.pid, user: spec.user, mapping: mapping)
            }
            if let group, joinFds.isEmpty {
                do { try group.add(pid: child.pid) } catch { throw SandboxError.cgroup(error) }
            }
            if let grant = spec.egress {
                guard case .root = identity else {
                    throw SandboxError.egress("a rootless worker cannot grant egress: it would need pasta or slirp4netns; run tasks with an egress grant on a root worker")
                }
                network = try EgressNetwork.attach(pid: child.pid, grant: grant)
            }
            try process.release(sending: trees)
        } catch {
            process.killAndReap()
            network?.detach()
            throw error
        }
        if let failure = process.readSetupError() {
            process.killAndReap()
            network?.detach()
            if failure.stage == Int32(DGRID_STAGE_EXEC.rawValue) {
                throw .commandNotFound(command: spec.command[0], errno: failure.error)
            }
            throw .setup(stage: failure.stage, errno: failure.error)
        }
        spec.freezer?.attach(group)
        defer { spec.freezer?.detach() }
        let deadline = spec.timeoutSeconds.map { started + UInt64($0 * 1e9) }
        let supervisor = Supervisor(process: process, stdout: stdoutPipe, stderr: stderrPipe,
                                    limit: spec.outputLimit, deadline: deadline, group: group,
                                    watchOOM: group != nil && spec.limits.memoryBytes != nil, stdoutWatcher: spec.stdoutWatcher, spool: spec.outputSpool)
        let ended = supervisor.run()
        let finished = Clock.monotonicNanoseconds()
        let blocked = network?.detach()
        let stats = group?.stats()

        var outcome = Outcome(exitCode: 0)
        if !idmapped {
            outcome.rootfsNote = "the rootfs's filesystem cannot be idmapped: its files show as owned by nobody (65534)"
        }
        outcome.durationMs = (finished - started) / 1_000_000
        outcome.stdout = ended.stdout
        outcome.stderr = ended.stderr
        outcome.timedOut = ended.timedOut
        outcome.oomKilled = stats?.oomKilled ?? false
        outcome.pidsLimitHit = stats?.pidsLimitHit ?? false
        if let blocked { spec.egressReport?.record(blockedPackets: blocked) }
        outcome.cpuMs = stats?.cpuNanoseconds.map { $0 / 1_000_000 } ?? ended.rusageCPUMicroseconds / 1000
        outcome.maxRssBytes = stats?.peakMemoryBytes ?? ended.rusageMaxRSSBytes
        if ended.timedOut {
            outcome.exitCode = 124
            outcome.signal = SIGKILL
        } else if let status = ended.taskStatus {
            if status & 0x7f == 0 {
                outcome.exitCode = (status >> 8) & 0xff
            } else {
                let signal = status & 0x7f
                outcome.signal = signal
                outcome.exitCode = 128 + signal
            }
        } else {
            // pid 1 died without reporting (killed from outside, e.g. the OOM killer).
            outcome.exitCode = ended.pid1ExitCode
            if ended.pid1Signal != 0 {
                outcome.signal = ended.pid1Signal
                outcome.exitCode = 128 + ended.pid1Signal
            }
        }
        return outcome
    }

    private static func resolveRootfs(_ path: String) throws(SandboxError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw .rootfs(path: path, reason: errno == ENOENT ? "does not exist" : errnoText(errno))
        }
        defer { free(resolved) }
        var st = stat()
        guard stat(resolved, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw .rootfs(path: path, reason: "is not a directory")
        }
        let result = String(cString: resolved)
        guard result != "/" else {
            throw .rootfs(path: path, reason: "the host's root cannot be a sandbox rootfs")
        }
        return result
    }

    private static func validate(_ spec: SandboxSpec) throws(SandboxError) {
        guard let first = spec.command.first, !first.isEmpty else {
            throw .invalidSpec("no command given")
        }
        guard spec.workingDirectory.hasPrefix("/") else {
            throw .invalidSpec("working directory '\(spec.workingDirectory)' must be an absolute path")
        }
        let strings = spec.command + spec.environment + [spec.workingDirectory, spec.hostname]
        guard !strings.contains(where: { $0.utf8.contains(0) }) else {
            throw .invalidSpec("command, environment and paths must not contain NUL bytes")
        }
        guard !spec.hostname.isEmpty, spec.hostname.utf8.count <= 64 else {
            throw .invalidSpec("hostname must be 1 to 64 bytes")
        }
        guard spec.environment.allSatisfy({ $0.contains("=") && !$0.hasPrefix("=") }) else {
            throw .invalidSpec("environment entries must be KEY=VALUE")
        }
        guard spec.outputLimit >= 0 else {
            throw .invalidSpec("output limit must not be negative")
        }
        if let t = spec.timeoutSeconds, !(t > 0 && t < 1e7) {
            throw .invalidSpec("timeout must be a positive number of seconds")
        }
        if let problem = SandboxVolume.problem(spec.volumes) { throw .invalidSpec(problem) }
    }
}

/// Unique sandbox ids: `<pid>-<process start time>-<counter>`; the owner's pid
/// and start time let a later start tell a crashed owner's leftovers from a
/// live neighbour's.
enum SandboxID {
    private static let counter = Counter()

    static func next() -> String {
        "\(getpid())-\(processStart)-\(counter.next())"
    }

    /// This process's start time in clock ticks since boot (field 22 of
    /// /proc/self/stat): with the pid, it tells a live owner from a reused pid.
    static let processStart: UInt64 = startTime(of: getpid()) ?? 0

    /// True when the group's owner still runs; names not made by us are kept too.
    static func ownerIsAlive(_ name: String) -> Bool {
        let parts = name.split(separator: "-")
        guard parts.count == 3, let pid = pid_t(parts[0]), let start = UInt64(parts[1]) else { return true }
        return startTime(of: pid) == start
    }

    private static func startTime(of pid: pid_t) -> UInt64? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0, let close = buffer[0..<n].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // Fields after the command name start at field 3; the start time is field 22.
        let fields = buffer[(close + 2)..<n].split(separator: UInt8(ascii: " "))
        guard fields.count > 19 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
    }
}

extension SandboxRunner {
    /// Why a sandbox's cgroup cannot be made now (the hierarchy went read-only,
    /// delegation was taken away, the controllers vanished); nil when a group
    /// is created and removed again, or when this runner has no cgroups at all
    /// (that is a setting, reported by the run that needs limits). One group with
    /// this runner's own driver: the worker asks every 30 s, and `CgroupCheck`
    /// (doctor) detects the hierarchy again and makes a group per limit.
    public func cgroupProblem() -> String? {
        guard let cgroups else { return nil }
        do {
            let group = try cgroups.create(name: SandboxID.next(), limits: ResourceLimits(pids: 1))
            try group.remove()
            return nil
        } catch {
            return "cannot create a sandbox cgroup: \(error)"
        }
    }
}
