import CShims
import Glibc
import SandboxSupport

/// Every string and array the child will read, allocated in the parent before
/// clone() (docs/ARCHITECTURE.md §2: the child allocates nothing).
struct PreparedConfig {
    let root: CStringArray      // anchor, staging size
    let lowers: CStringArray
    let overlay: Bool
    let lowerCount: Int32
    let initArgv: CStringArray
    let envp: CStringArray
    let scalars: CStringArray  // workdir, hostname, tmp mount data
    let masked: CStringArray
    let readonly: CStringArray
    let volumeNames: CStringArray
    /// Host directories of the read-only volumes, for a rootless child to clone itself.
    let volumePaths: CStringArray
    let volumeCount: Int32

    init(root: RunRoot, stagingSize: UInt64, candidates: [String], argv: [String], envp: [String], workdir: String,
         hostname: String, tmpData: String, masked: [String], readonly: [String], volumes: [SandboxVolume] = []) {
        self.root = CStringArray([root.anchor, "\(stagingSize)"])
        self.lowers = CStringArray(root.lowers)
        self.overlay = root.overlay
        self.lowerCount = Int32(root.lowers.count)
        self.initArgv = CStringArray(InitImage.arguments(candidates: candidates, argv: argv))
        self.envp = CStringArray(envp)
        self.scalars = CStringArray([workdir, hostname, tmpData])
        self.masked = CStringArray(masked)
        self.readonly = CStringArray(readonly)
        volumeNames = CStringArray(volumes.map(\.name))
        volumePaths = CStringArray(volumes.map { volume in
            if case .readOnly(let path) = volume.source { return path }
            return ""
        })
        volumeCount = Int32(volumes.count)
    }

    /// - Parameters:
    ///   - clonesLowers: the child clones the lowers from their paths itself
    ///     (rootless); else the parent sends them with the go byte.
    func withConfig<R>(spec: SandboxSpec, namespaces: Int32, clonesLowers: Bool, becomeNamespaceRoot: Bool,
                       clearGroups: Bool, capLastCap: Int32,
                       stdoutFd: Int32, stderrFd: Int32, initFd: Int32, cgroupJoinFds: [Int32] = [],
                       _ body: (UnsafePointer<dgrid_spawn_config>) -> R) -> R {
        let rlimits = spec.rlimits.map { dgrid_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) }
        let filter = spec.seccomp?.instructions ?? []
        return rlimits.withUnsafeBufferPointer { rl in
            cgroupJoinFds.withUnsafeBufferPointer { joinFds in
            filter.withUnsafeBufferPointer { bpf in
                initArgv.withUnsafeArgv { initArgvPtr in
                lowers.withUnsafeArgv { lowersPtr in
                envp.withUnsafeArgv { envpPtr in
                masked.withUnsafeArgv { maskedPtr in
                readonly.withUnsafeArgv { readonlyPtr in
                volumeNames.withUnsafeArgv { volumeNamesPtr in
                volumePaths.withUnsafeArgv { volumePathsPtr in
                    var config = dgrid_spawn_config()
                    config.anchor = UnsafePointer(root.pointers[0])
                    config.staging_size = UnsafePointer(root.pointers[1])
                    config.lower_paths = clonesLowers
                        ? UnsafeRawPointer(lowersPtr).assumingMemoryBound(to: UnsafePointer<CChar>?.self) : nil
                    config.lower_count = lowerCount
                    config.overlay = overlay ? 1 : 0
                    config.become_ns_root = becomeNamespaceRoot ? 1 : 0
                    config.init_argv = initArgvPtr
                    config.envp = envpPtr
                    config.workdir = UnsafePointer(scalars.pointers[0])
                    config.hostname = UnsafePointer(scalars.pointers[1])
                    config.tmp_mount_data = UnsafePointer(scalars.pointers[2])
                    config.masked_paths = UnsafeRawPointer(maskedPtr).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
                    config.readonly_paths = UnsafeRawPointer(readonlyPtr).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
                    config.rlimits = rl.baseAddress
                    config.rlimit_count = Int32(rl.count)
                    config.seccomp_filter = filter.isEmpty ? nil : bpf.baseAddress
                    config.seccomp_filter_len = UInt16(clamping: filter.count)
                    config.uid = spec.user.uid
                    config.gid = spec.user.gid
                    config.namespaces = namespaces
                    config.new_cgroup_namespace = 1
                    config.cgroup_join_fds = joinFds.baseAddress
                    config.cgroup_join_count = Int32(joinFds.count)
                    config.user_namespace = 1
                    config.clear_groups = clearGroups ? 1 : 0
                    config.readonly_rootfs = spec.writableRootfs ? 0 : 1
                    config.mount_sysfs = spec.mountSysfs ? 1 : 0
                    config.loopback_up = 1
                    config.cap_last_cap = capLastCap
                    config.stdout_fd = stdoutFd
                    config.stderr_fd = stderrFd
                    config.init_fd = initFd
                    config.volume_names = UnsafeRawPointer(volumeNamesPtr).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
                    config.volume_paths = UnsafeRawPointer(volumePathsPtr).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
                    config.volume_count = volumeCount
                    return withUnsafePointer(to: &config) { body($0) }
                }}}}}}}
            }
            }
        }
    }
}
