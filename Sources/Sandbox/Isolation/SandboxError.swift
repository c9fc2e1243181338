import CShims
import Glibc
import SandboxSupport

/// Why a sandbox could not be set up. Each case says what failed, on what, and
/// the CLI prints it as one line and exits 125.
public enum SandboxError: Error, Equatable, CustomStringConvertible {
    case invalidSpec(String)
    case rootfs(path: String, reason: String)
    /// The child failed at `stage` with `errno` before the task started.
    case setup(stage: Int32, errno: Int32)
    case commandNotFound(command: String, errno: Int32)
    case spawn(errno: Int32)
    case userNamespace(path: String, errno: Int32)
    case idMapHelper(helper: String, status: Int32)
    case userNotMapped(user: UserID, mapping: String)
    case cgroup(CgroupError)
    case cgroupsRequired(reason: String)
    case seccomp(String)
    /// The sandbox's egress network could not be set up (docs/ARCHITECTURE.md §9).
    case egress(String)
    /// A volume (`/inputs`, `/output`, `/checkpoint`) could not be made or given to the sandbox.
    case volume(String)
    /// dgrid-init (pid 1 after setup) could not be loaded: a broken install.
    case initProgram(path: String, errno: Int32)
    /// A root worker could not lease a host id range for the run.
    case idRange(path: String, errno: Int32)
    case idRangesExhausted(count: UInt32)
    /// A one-id rootless mapping would carry the user's supplementary groups into the sandbox.
    case supplementaryGroups([UInt32])

    public var description: String {
        switch self {
        case .invalidSpec(let why):
            return "invalid sandbox: \(why)"
        case .rootfs(let path, let reason):
            return "rootfs \(path): \(reason)"
        case .setup(let stage, let errno):
            return "sandbox setup failed: \(String(cString: dgrid_stage_name(stage))): \(errnoText(errno))"
        case .commandNotFound(let command, let errno):
            return "exec \(command): \(errnoText(errno))" + (errno == ENOENT ? " (not found in the rootfs; check PATH or give an absolute path)" : "")
        case .spawn(let errno):
            return "clone: \(errnoText(errno))" + (errno == EPERM ? " (creating namespaces needs root or unprivileged user namespaces)" : "")
        case .userNamespace(let path, let errno):
            return "writing \(path): \(errnoText(errno))"
        case .idMapHelper(let helper, let status):
            return "\(helper) failed (wait status \(status)); check /etc/subuid and /etc/subgid for this user"
        case .userNotMapped(let user, let mapping):
            return "user \(user) is outside this rootless mapping (\(mapping)); choose a uid and gid within it"
        case .cgroup(let error):
            return error.description
        case .cgroupsRequired(let reason):
            return "\(reason); resource limits cannot be enforced. Use a delegated cgroup, or pass --no-cgroup-limits to run without memory, CPU and pids limits"
        case .seccomp(let why):
            return "seccomp: \(why)"
        case .volume(let why):
            return "the task's volumes: \(why)"
        case .egress(let why):
            return "the task's egress network: \(why) (egress needs a root worker with iproute2 and nftables)"
        case .idRange(let path, let errno):
            return "leasing a host id range (\(path)): \(errnoText(errno)); it must be a root-owned directory no one else can write"
        case .idRangesExhausted(let count):
            return "all \(count) host id ranges are in use by running sandboxes; run fewer at once or give dgrid a larger range in /etc/subuid and /etc/subgid (dgrid:START:COUNT)"
        case .supplementaryGroups(let groups):
            return "rootless with a one-id mapping, the sandbox would keep your supplementary groups (\(groups.map(String.init).joined(separator: ", "))), which the kernel does not let an unprivileged user drop: run dgrid as a user without supplementary groups, or give this user subordinate ids in /etc/subuid and /etc/subgid (and install newuidmap)"
        case .initProgram(let path, let errno):
            return "loading the sandbox init \(path): \(errnoText(errno)); install \(InitImage.fileName) beside the dgrid binaries"
        }
    }
}

