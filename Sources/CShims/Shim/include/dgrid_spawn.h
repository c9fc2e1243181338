/*
 * dgrid spawn path (docs/ARCHITECTURE.md §2).
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
    DGRID_STAGE_SECCOMP_HANDOVER, /* pid 1 could not hand the filter to dgrid-init */
    DGRID_STAGE_EXEC_INIT,        /* pid 1 could not exec dgrid-init */
    DGRID_STAGE_INIT,             /* dgrid-init could not read what pid 1 handed over */
    DGRID_STAGE_STAGING,          /* the staging tmpfs the root is built in */
    DGRID_STAGE_NS_ROOT,          /* becoming root of the sandbox's user namespace */
    DGRID_STAGE_JOIN_CGROUP,      /* pid 1 moving itself into its cgroup v1 groups */
    DGRID_STAGE_VOLUME,           /* a volume's mount point (must be a real directory) or its mount */
    DGRID_STAGE_COUNT
};

/*
 * The hand-over from the shim's pid 1 to dgrid-init (Sources/dgrid-init).
 * pid 1 is a clone of the worker; once the sandbox is built and every
 * privilege dropped it execs dgrid-init from a sealed memfd, so no byte of the
 * worker's memory or environment stays in the sandbox (docs/THREATS.md, T1).
 *
 * Descriptors dgrid-init finds open (it marks them close-on-exec at once):
 */
enum dgrid_init_fd {
    DGRID_INIT_FD_ERROR = 3,    /* (stage, errno) pairs for the parent; EOF means the task exec'd */
    DGRID_INIT_FD_STATUS = 4,   /* the task's raw wait status, written once before exit */
    DGRID_INIT_FD_SECCOMP = 5,  /* the seccomp BPF program (memfd, whole sock_filter array), or closed */
};
/* dgrid-init's argv: "dgrid-init", N (decimal), N exec candidates, then the
 * task's argv. Its envp is the task's environment. */

/* A human name for a stage ("pivot_root"), for error messages in the parent. */
const char *dgrid_stage_name(int stage);

struct dgrid_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
};

/* The most lower trees a root is built from (an overlay's lowers): the go
 * byte carries them as SCM_RIGHTS, and the overlay's options fit one page. */
#define DGRID_MAX_LOWERS 160
/* The most volumes a sandbox gets (/inputs, /output, /checkpoint). */
#define DGRID_MAX_VOLUMES 4

struct dgrid_spawn_config {
    /*
     * The root. The child mounts a staging tmpfs (staging_size bytes: the
     * bound on a writable root's upper) on `anchor`, an empty directory of
     * the run, and builds the root in it from `lower_count` trees, lowest
     * first: with `overlay`, an overlay of them over dgrid's own mount-point
     * layer (an upper in the staging tmpfs when writable), so no layer is
     * ever written; without, the one tree is the root itself (a rootfs
     * directory). As root the parent sends the trees with the go byte:
     * detached clones idmapped to the sandbox's user namespace. Rootless, the
     * child clones `lower_paths` itself (trees are not sent).
     */
    const char *anchor;
    const char *const *lower_paths;
    int lower_count;
    int overlay;
    const char *staging_size;   /* tmpfs "size" value, e.g. "1073741824" */
    /*
     * Volumes: trees mounted at /<name> (one path component) in the sandbox,
     * over a mount point dgrid's own layer provides. As root the parent sends
     * one tree per volume after the lowers (read-only clones of host
     * directories, or writable clones of a tmpfs the parent made and keeps,
     * all idmapped like the lowers). Rootless, the child clones each
     * `volume_paths` entry itself, read-only. nosuid and nodev always.
     */
    const char *const *volume_names;
    const char *const *volume_paths;
    int volume_count;
    /* Nonzero: become uid/gid 0 of the user namespace once the paths are open
     * (the parent mapped a whole range); zero for a one-id mapping. */
    int become_ns_root;
    /* The task's environment (dgrid-init's too). */
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
    /* cgroup v1 `tasks` files of the sandbox's groups, opened by the parent
     * (the kernel checks the opener's credentials). pid 1 writes "0" to each
     * right after the go byte: moving the calling thread of a one-thread
     * process skips the global threadgroup lock whose write side waits for an
     * RCU grace period, ~10 ms here, that a write of the pid to cgroup.procs
     * by the parent pays (docs/ARCHITECTURE.md §3). Closed before anything of
     * the task runs. NULL/0 when the parent adds the child itself (v2). */
    const int *cgroup_join_fds;
    int cgroup_join_count;
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
    /* An O_PATH descriptor of the sealed dgrid-init memfd, and its argv
     * (exec candidates and the task's argv, see the hand-over above). */
    int init_fd;
    char *const *init_argv;
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
