/* Stage names as the user reads them: "pivot_root: Invalid argument". */
#include "dgrid_spawn.h"

static const char *const names[DGRID_STAGE_COUNT] = {
    [DGRID_STAGE_NONE] = "setup",
    [DGRID_STAGE_SYNC_WAIT] = "waiting for the parent",
    [DGRID_STAGE_UNSHARE_CGROUP] = "unshare cgroup namespace",
    [DGRID_STAGE_SETSID] = "setsid",
    [DGRID_STAGE_HOSTNAME] = "sethostname",
    [DGRID_STAGE_MOUNT_PRIVATE] = "make mounts private",
    [DGRID_STAGE_MOUNT_OVERLAY] = "mount overlay rootfs",
    [DGRID_STAGE_BIND_ROOTFS] = "bind-mount rootfs",
    [DGRID_STAGE_OPEN_ROOTFS] = "open rootfs",
    [DGRID_STAGE_ROOTFS_PROC] = "rootfs /proc (must be a real directory, not a symlink)",
    [DGRID_STAGE_MOUNT_PROC] = "mount /proc",
    [DGRID_STAGE_ROOTFS_DEV] = "rootfs /dev (must be a real directory, not a symlink)",
    [DGRID_STAGE_MOUNT_DEV] = "mount /dev tmpfs",
    [DGRID_STAGE_DEV_NODES] = "create /dev nodes",
    [DGRID_STAGE_MOUNT_DEVPTS] = "mount /dev/pts",
    [DGRID_STAGE_MOUNT_SHM] = "mount /dev/shm",
    [DGRID_STAGE_ROOTFS_TMP] = "rootfs /tmp (must be a real directory, not a symlink)",
    [DGRID_STAGE_MOUNT_TMP] = "mount /tmp",
    [DGRID_STAGE_ROOTFS_SYS] = "rootfs /sys (must be a real directory, not a symlink)",
    [DGRID_STAGE_MOUNT_SYS] = "mount /sys",
    [DGRID_STAGE_MASK_PATHS] = "mask paths",
    [DGRID_STAGE_READONLY_PATHS] = "read-only paths",
    [DGRID_STAGE_PIVOT_ROOT] = "pivot_root",
    [DGRID_STAGE_DETACH_OLD_ROOT] = "detach old root",
    [DGRID_STAGE_REMOUNT_ROOT] = "remount rootfs",
    [DGRID_STAGE_LOOPBACK] = "bring up loopback",
    [DGRID_STAGE_RLIMITS] = "setrlimit",
    [DGRID_STAGE_DROP_BOUNDING] = "drop bounding capabilities",
    [DGRID_STAGE_SETGROUPS] = "setgroups",
    [DGRID_STAGE_SETGID] = "setresgid",
    [DGRID_STAGE_SETUID] = "setresuid",
    [DGRID_STAGE_CAPSET] = "capset",
    [DGRID_STAGE_NO_NEW_PRIVS] = "no_new_privs",
    [DGRID_STAGE_WORKDIR] = "chdir to working directory",
    [DGRID_STAGE_STDIO] = "set up stdio",
    [DGRID_STAGE_CLOSE_FDS] = "close inherited descriptors",
    [DGRID_STAGE_FORK_TASK] = "fork task",
    [DGRID_STAGE_SECCOMP] = "install seccomp filter",
    [DGRID_STAGE_EXEC] = "exec",
    [DGRID_STAGE_SECCOMP_HANDOVER] = "hand the seccomp filter to dgrid-init",
    [DGRID_STAGE_EXEC_INIT] = "exec dgrid-init",
    [DGRID_STAGE_INIT] = "dgrid-init start",
    [DGRID_STAGE_STAGING] = "staging tmpfs for the root",
    [DGRID_STAGE_NS_ROOT] = "become root of the user namespace",
    [DGRID_STAGE_JOIN_CGROUP] = "join the sandbox's cgroup",
    [DGRID_STAGE_VOLUME] = "mount a volume (its mount point must be a real directory, not a symlink)",
};

const char *dgrid_stage_name(int stage) {
    if (stage < 0 || stage >= DGRID_STAGE_COUNT || !names[stage])
        return "unknown stage";
    return names[stage];
}
