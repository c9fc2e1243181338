import CShims
import Glibc

/// Every string and array the child will read, allocated in the parent before
/// clone() (DESIGN.md §2: the child allocates nothing).
struct PreparedConfig {
    let rootfs: CStringArray
    let candidates: CStringArray
    let argv: CStringArray
    let envp: CStringArray
    let scalars: CStringArray  // workdir, hostname, tmp mount data
    let masked: CStringArray
    let readonly: CStringArray
    let overlay: CStringArray?  // base, data

    init(rootfs: String, candidates: [String], argv: [String], envp: [String], workdir: String,
         hostname: String, tmpData: String, overlayBase: String?, overlayData: String?,
         masked: [String], readonly: [String]) {
        self.rootfs = CStringArray([rootfs])
        self.candidates = CStringArray(candidates)
        self.argv = CStringArray(argv)
        self.envp = CStringArray(envp)
        self.scalars = CStringArray([workdir, hostname, tmpData])
        self.masked = CStringArray(masked)
        self.readonly = CStringArray(readonly)
        if let overlayBase, let overlayData {
            self.overlay = CStringArray([overlayBase, overlayData])
        } else {
            self.overlay = nil
        }
    }

    func withConfig<R>(spec: SandboxSpec, namespaces: Int32, userNamespace: Bool, clearGroups: Bool, capLastCap: Int32,
                       stdoutFd: Int32, stderrFd: Int32,
                       _ body: (UnsafePointer<dgrid_spawn_config>) -> R) -> R {
        let rlimits = spec.rlimits.map { dgrid_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) }
        let filter = spec.seccomp?.instructions ?? []
        return rlimits.withUnsafeBufferPointer { rl in
            filter.withUnsafeBufferPointer { bpf in
                candidates.withUnsafeArgv { candidatesPtr in
                argv.withUnsafeArgv { argvPtr in
                envp.withUnsafeArgv { envpPtr in
                masked.withUnsafeArgv { maskedPtr in
                readonly.withUnsafeArgv { readonlyPtr in
                    var config = dgrid_spawn_config()
                    config.rootfs = UnsafePointer(rootfs.pointers[0])
                    config.overlay_base = overlay.flatMap { UnsafePointer($0.pointers[0]) }
                    config.overlay_data = overlay.flatMap { UnsafePointer($0.pointers[1]) }
                    config.exec_paths = UnsafeRawPointer(candidatesPtr).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
                    config.argv = argvPtr
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
                    config.user_namespace = userNamespace ? 1 : 0
                    config.clear_groups = clearGroups ? 1 : 0
                    config.readonly_rootfs = spec.writableRootfs ? 0 : 1
                    config.mount_sysfs = spec.mountSysfs ? 1 : 0
                    config.loopback_up = 1
                    config.cap_last_cap = capLastCap
                    config.stdout_fd = stdoutFd
                    config.stderr_fd = stderrFd
                    return withUnsafePointer(to: &config) { body($0) }
                }}}}}
            }
        }
    }
}
