import CShims
import Glibc
import SandboxSupport

/// The steps of a sandbox's set-up in the order they happen (docs/ARCHITECTURE.md
/// §2), as `dgrid doctor` reads them: a probe sandbox that fails at one step has
/// passed every step before it, so the stage the shim reports says which
/// kernel feature works and which does not.
public enum SetupMilestone: Int, Sendable, Comparable, CaseIterable {
    /// The sandbox's cgroup made under the worker's own (before anything is cloned).
    case cgroupCreated
    /// pid 1 cloned into new user, pid, mount, UTS, IPC and network namespaces.
    case cloned
    /// Its user namespace given its id maps (a leased range, the subordinate ids or one id).
    case idMapped
    /// pid 1 moved itself into its cgroup v1 groups.
    case cgroupJoined
    /// Its mounts made private, the root's trees opened, the staging tmpfs mounted.
    case mountNamespace
    /// The image's layers mounted as one overlay, inside the sandbox's user namespace.
    case overlay
    /// `/inputs`, `/output`, `/checkpoint` mounted (idmapped tmpfs as root).
    case volumes
    case cgroupNamespace
    case hostname
    /// /proc, /dev, /tmp, /sys, pivot_root, masked and read-only paths.
    case rootfs
    case loopback
    /// rlimits, no capabilities in any set, the task's uid and gid.
    case privileges
    case noNewPrivs
    /// dgrid-init exec'd from its sealed memfd and the task forked.
    case initStarted
    case seccomp
    /// The task's own execve: every step before it worked.
    case taskExec

    public static func < (lhs: SetupMilestone, rhs: SetupMilestone) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Words for a line of `dgrid doctor`.
    public var summary: String {
        switch self {
        case .cgroupCreated: "create the sandbox's cgroup"
        case .cloned: "clone pid 1 into new namespaces"
        case .idMapped: "map the user namespace's ids"
        case .cgroupJoined: "join the sandbox's cgroup"
        case .mountNamespace: "private mounts and the staging tmpfs"
        case .overlay: "mount the overlay root"
        case .volumes: "mount the task's volumes"
        case .cgroupNamespace: "unshare the cgroup namespace"
        case .hostname: "set the hostname"
        case .rootfs: "build the root (/proc, /dev, pivot_root)"
        case .loopback: "bring up loopback"
        case .privileges: "drop every capability"
        case .noNewPrivs: "set no_new_privs"
        case .initStarted: "start dgrid-init"
        case .seccomp: "install the seccomp filter"
        case .taskExec: "exec the task"
        }
    }

    /// The step a set-up error stopped at.
    static func failed(at error: SandboxError) -> SetupMilestone {
        switch error {
        case .cgroup, .cgroupsRequired: return .cgroupCreated
        case .spawn: return .cloned
        case .userNamespace, .idMapHelper, .idRange, .idRangesExhausted, .userNotMapped, .supplementaryGroups: return .idMapped
        case .volume: return .volumes
        case .seccomp: return .seccomp
        case .initProgram: return .initStarted
        case .commandNotFound: return .taskExec
        case .setup(let stage, _): return milestone(ofStage: stage)
        case .rootfs, .invalidSpec, .egress: return .mountNamespace
        }
    }

    /// Where each of the shim's stages falls (spawn.c's child_main, dgrid-init's exec_task).
    static func milestone(ofStage stage: Int32) -> SetupMilestone {
        switch UInt32(bitPattern: stage) {
        case DGRID_STAGE_SYNC_WAIT.rawValue: return .idMapped
        case DGRID_STAGE_JOIN_CGROUP.rawValue: return .cgroupJoined
        case DGRID_STAGE_MOUNT_PRIVATE.rawValue, DGRID_STAGE_STAGING.rawValue, DGRID_STAGE_BIND_ROOTFS.rawValue,
             DGRID_STAGE_OPEN_ROOTFS.rawValue, DGRID_STAGE_NS_ROOT.rawValue, DGRID_STAGE_CLOSE_FDS.rawValue:
            return .mountNamespace
        case DGRID_STAGE_MOUNT_OVERLAY.rawValue: return .overlay
        case DGRID_STAGE_VOLUME.rawValue: return .volumes
        case DGRID_STAGE_UNSHARE_CGROUP.rawValue: return .cgroupNamespace
        case DGRID_STAGE_SETSID.rawValue, DGRID_STAGE_HOSTNAME.rawValue: return .hostname
        case DGRID_STAGE_LOOPBACK.rawValue: return .loopback
        case DGRID_STAGE_RLIMITS.rawValue, DGRID_STAGE_DROP_BOUNDING.rawValue, DGRID_STAGE_SETGROUPS.rawValue,
             DGRID_STAGE_SETGID.rawValue, DGRID_STAGE_SETUID.rawValue, DGRID_STAGE_CAPSET.rawValue:
            return .privileges
        case DGRID_STAGE_NO_NEW_PRIVS.rawValue: return .noNewPrivs
        case DGRID_STAGE_WORKDIR.rawValue, DGRID_STAGE_STDIO.rawValue, DGRID_STAGE_SECCOMP_HANDOVER.rawValue,
             DGRID_STAGE_EXEC_INIT.rawValue, DGRID_STAGE_INIT.rawValue, DGRID_STAGE_FORK_TASK.rawValue:
            return .initStarted
        case DGRID_STAGE_SECCOMP.rawValue: return .seccomp
        case DGRID_STAGE_EXEC.rawValue: return .taskExec
        default: return .rootfs  // /proc, /dev, /tmp, /sys, masks, pivot_root, remount
        }
    }
}
