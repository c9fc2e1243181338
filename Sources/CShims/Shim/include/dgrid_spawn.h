/*
 * dgrid spawn path (DESIGN.md §2).
 *
 * The Swift process is multithreaded, so the cloned child may only run
 * async-signal-safe code. The parent prepares everything in this config
 * (strings, arrays, the seccomp BPF); the child reads it and issues raw
 * syscalls. Nothing in the child allocates, locks, or calls into Swift.
 */
#ifndef DGRID_SPAWN_H
#define DGRID_SPAWN_H

#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>

/* Where setup failed. The child writes (stage, errno) to the error pipe. */
enum dgrid_stage {
    DGRID_STAGE_NONE = 0,
    DGRID_STAGE_SYNC_WAIT,
    DGRID_STAGE_UNSHARE_CGROUP,
    DGRID_STAGE_SETSID,
    DGRID_STAGE_HOSTNAME,
    DGRID_STAGE_MOUNT_PRIVATE,
    DGRID_STAGE_MOUNT_OVERLAY,
    DGRID_STAGE_BIND_ROOTFS,
    DGRID_STAGE_OPEN_ROOTFS,
    DGRID_STAGE_ROOTFS_PROC,     /* /proc in the rootfs is missing-and-uncreatable or not a directory */
    DGRID_STAGE_MOUNT_PROC,
    DGRID_STAGE_ROOTFS_DEV,
    DGRID_STAGE_MOUNT_DEV,
    DGRID_STAGE_DEV_NODES,
    DGRID_STAGE_MOUNT_DEVPTS,
    DGRID_STAGE_MOUNT_SHM,
    DGRID_STAGE_ROOTFS_TMP,
    DGRID_STAGE_MOUNT_TMP,
    DGRID_STAGE_ROOTFS_SYS,
    DGRID_STAGE_MOUNT_SYS,
    DGRID_STAGE_MASK_PATHS,
    DGRID_STAGE_READONLY_PATHS,
    DGRID_STAGE_PIVOT_ROOT,
    DGRID_STAGE_DETACH_OLD_ROOT,
    DGRID_STAGE_REMOUNT_ROOT,
    DGRID_STAGE_LOOPBACK,
    DGRID_STAGE_RLIMITS,
    DGRID_STAGE_DROP_BOUNDING,
    DGRID_STAGE_SETGROUPS,
    DGRID_STAGE_SETGID,
    DGRID_STAGE_SETUID,
    DGRID_STAGE_CAPSET,
    DGRID_STAGE_NO_NEW_PRIVS,
    DGRID_STAGE_WORKDIR,
    DGRID_STAGE_STDIO,
    DGRID_STAGE_CLOSE_FDS,
    DGRID_STAGE_FORK_TASK,
    DGRID_STAGE_SECCOMP,
    DGRID_STAGE_EXEC,
    DGRID_STAGE_COUNT
};

/* A human name for a stage ("pivot_root"), for error messages in the parent. */
const char *dgrid_stage_name(int stage);

struct dgrid_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
};

struct dgrid_spawn_config {
    /* Host path of the root filesystem; absolute and already resolved by the parent.
     * With overlay_data set, the (empty) directory the overlay is mounted on. */
    const char *rootfs;
    /* Image runs: overlayfs mount data whose lowerdir entries are relative to
     * overlay_base (the layer store), so a deep image fits in one page of options.
     * NULL for a plain rootfs directory. Mounted in the child's own mount
     * namespace: it vanishes with the sandbox, whatever happens to dgrid. */
    const char *overlay_base;
    const char *overlay_data;
    /* Candidates for argv[0] inside the sandbox (PATH already expanded), NULL-terminated. */
    const char *const *exec_paths;
    char *const *argv;
    char *const *envp;
    /* Absolute path inside the sandbox. */
    const char *workdir;
    const char *hostname;
    /* Mount data for the /tmp tmpfs, e.g. "size=67108864,mode=1777". */
    const char *tmp_mount_data;
    /* Absolute paths inside the sandbox (under /proc and /sys), NULL-terminated. */
    const char *const *masked_paths;
    const char *const *readonly_paths;
    const struct dgrid_rlimit *rlimits;
    int rlimit_count;
    /* Seccomp BPF compiled by libseccomp in the parent; NULL/0 means unconfined. */
    const struct sock_filter *seccomp_filter;
    unsigned short seccomp_filter_len;
    uid_t uid;
    gid_t gid;
    /* CLONE_NEW* flags for clone() (the cgroup namespace is unshared after the sync). */
    int namespaces;
    int new_cgroup_namespace;
    /* Nonzero when running in a user namespace: mknod and setgroups are not available. */
    int user_namespace;
    /* Nonzero to setgroups(0, NULL): as real root, or with a subordinate-id map.
     * A one-id user namespace has setgroups denied by design. */
    int clear_groups;
    int readonly_rootfs;
    int mount_sysfs;
    int loopback_up;
    int cap_last_cap;
    /* Write ends of the parent's output pipes; become fd 1 and 2 in the task. */
    int stdout_fd;
    int stderr_fd;
};

struct dgrid_child {
    pid_t pid;
    int pidfd;      /* polls readable when pid 1 of the sandbox exits */
    int sync_fd;    /* parent writes one byte here to release the child */
    int error_fd;   /* (stage, errno) pairs; EOF with no bytes means execve succeeded */
    int status_fd;  /* pid 1 writes the task's raw wait status here before exiting */
};

/*
 * Clone the sandbox's pid 1. On success returns 0 and fills `child`; the child
 * blocks until the parent writes to child->sync_fd (after uid/gid maps and
 * cgroup membership are in place). Returns -errno on failure.
 */
int dgrid_spawn(const struct dgrid_spawn_config *config, struct dgrid_child *child);

/* Write the pair the child would write; exposed so tests can check decoding. */
struct dgrid_setup_error {
    int32_t stage;
    int32_t error;
};

#endif
