/*
 * The spawn path: clone the sandbox's pid 1, build its filesystem, drop every
 * privilege, then exec dgrid-init (Sources/dgrid-init), which forks the task
 * and reaps. See dgrid_spawn.h for the contract.
 *
 * Everything from child_main() on runs in a child cloned from a multithreaded
 * process: only raw syscalls and async-signal-safe libc. In particular the
 * credential calls go through syscall() directly, because glibc's setuid()
 * family broadcasts to threads that do not exist in the child and would hang.
 */
#define _GNU_SOURCE
#include "dgrid_spawn.h"
#include "dgrid_child_util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* Fixed descriptor slots in pid 1 after the shuffle in settle_fds(). The
 * first two are where dgrid-init expects them (dgrid_spawn.h); the output
 * pipes' slots are free again (and reused for the seccomp hand-over) once they
 * are the task's stdout and stderr. */
enum {
    FD_ERROR = DGRID_INIT_FD_ERROR, FD_STATUS = DGRID_INIT_FD_STATUS,
    FD_STDOUT = 5, FD_STDERR = 6, FD_INIT = 7, FD_ROOT = 8, FD_FIRST_FREE = 9,
};
_Static_assert(DGRID_INIT_FD_SECCOMP == FD_STDOUT, "the filter goes where stdout's pipe was");

struct child_context {
    const struct dgrid_spawn_config *config;
    int sync_read;
    int error_write;
    int status_write;
    /* Parent ends, to be closed in the child. */
    int sync_write;
    int error_read;
    int status_read;
};

static int error_fd = -1;

static void __attribute__((noreturn)) fail(int stage, int err) {
    struct dgrid_setup_error e = { stage, err };
    if (error_fd >= 0)
        dgrid_write_all(error_fd, &e, sizeof e);
    _exit(125);
}

/* Move the six descriptors pid 1 keeps (the root's until pivot_root) to fixed slots and close everything
 * else the parent leaked into us: a host directory fd reaching the task is
 * CVE-2024-21626. All six stay close-on-exec, so the task gets only 0-2. */
static int settle_fds(struct child_context *ctx, int rootfd) {
    const struct dgrid_spawn_config *c = ctx->config;
    int keep[6] = { ctx->error_write, ctx->status_write, c->stdout_fd, c->stderr_fd, c->init_fd, rootfd };
    int high[6];
    for (int i = 0; i < 6; i++) {
        high[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, 64);
        if (high[i] < 0)
            fail(DGRID_STAGE_CLOSE_FDS, errno);
    }
    if (syscall(SYS_close_range, 3U, 63U, 0U) < 0)
        fail(DGRID_STAGE_CLOSE_FDS, errno);
    for (int i = 0; i < 6; i++) {
        if (dup3(high[i], FD_ERROR + i, O_CLOEXEC) < 0)
            fail(DGRID_STAGE_CLOSE_FDS, errno);
    }
    error_fd = FD_ERROR;
    if (syscall(SYS_close_range, (unsigned)FD_FIRST_FREE, ~0U, 0U) < 0)
        fail(DGRID_STAGE_CLOSE_FDS, errno);
    return FD_ROOT;
}

/* Open a directory of the rootfs for use as a mount point, never following a
 * symlink: a rootfs whose /proc is a symlink to / must not make us mount over
 * the host (CVE-2019-19921, CVE-2023-27561). Missing directories are created. */
static int open_mount_dir(int rootfd, const char *name, int stage) {
    int fd = openat(rootfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (mkdirat(rootfd, name, 0755) < 0 && errno != EEXIST)
            fail(stage, errno);
        fd = openat(rootfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0)
        fail(stage, errno == ELOOP ? ENOTDIR : errno);
    return fd;
}

/* mount() onto the exact directory an O_PATH fd names, via its magic link. */
static int mount_at_fd(const char *source, int fd, const char *type, unsigned long flags, const char *data) {
    char path[32];
    dgrid_fd_path(path, fd);
    return mount(source, path, type, flags, data);
}

static void mount_fresh(int rootfd, const char *name, int dir_stage, int mount_stage,
                        const char *type, unsigned long flags, const char *data) {
    int fd = open_mount_dir(rootfd, name, dir_stage);
    if (mount_at_fd(type, fd, type, flags, data) < 0)
        fail(mount_stage, errno);
    close(fd);
}

struct device { const char *name; unsigned major, minor; };
static const struct device devices[] = {
    { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
    { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

/* A fresh tmpfs /dev with exactly the six basic devices, pts, shm and the
 * usual links. Devices are created with mknod as real root, or bind-mounted
 * from the host inside a user namespace where mknod is refused. */
static void build_dev(int rootfd, int user_namespace) {
    int mountpoint = open_mount_dir(rootfd, "dev", DGRID_STAGE_ROOTFS_DEV);
    if (mount_at_fd("tmpfs", mountpoint, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536") < 0)
        fail(DGRID_STAGE_MOUNT_DEV, errno);
    close(mountpoint);
    /* Reopen: the lookup now crosses into the tmpfs we just mounted. */
    int dev = openat(rootfd, "dev", O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (dev < 0)
        fail(DGRID_STAGE_MOUNT_DEV, errno);

    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
        const struct device *d = &devices[i];
        if (!user_namespace &&
            mknodat(dev, d->name, S_IFCHR | 0666, makedev(d->major, d->minor)) == 0)
            continue;
        int f = openat(dev, d->name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (f < 0)
            fail(DGRID_STAGE_DEV_NODES, errno);
        close(f);
        char source[16] = "/dev/";
        dgrid_strlcpy(source + 5, d->name, sizeof source - 5);
        int target = openat(dev, d->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (target < 0 || mount_at_fd(source, target, NULL, MS_BIND, NULL) < 0)
            fail(DGRID_STAGE_DEV_NODES, errno);
        close(target);
    }

    static const char *const links[][2] = {
        { "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
        { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
        { "pts/ptmx", "ptmx" },
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlinkat(links[i][0], dev, links[i][1]) < 0)
            fail(DGRID_STAGE_DEV_NODES, errno);

    if (mkdirat(dev, "pts", 0755) < 0)
        fail(DGRID_STAGE_MOUNT_DEVPTS, errno);
    int pts = openat(dev, "pts", O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    /* gid=5 (tty) is not mapped in a one-id user namespace. */
    const char *pts_data = user_namespace ? "newinstance,ptmxmode=0666,mode=0620"
                                          : "newinstance,ptmxmode=0666,mode=0620,gid=5";
    if (pts < 0 || mount_at_fd("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, pts_data) < 0)
        fail(DGRID_STAGE_MOUNT_DEVPTS, errno);
    close(pts);

    if (mkdirat(dev, "shm", 01777) < 0)
        fail(DGRID_STAGE_MOUNT_SHM, errno);
    int shm = openat(dev, "shm", O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (shm < 0 || mount_at_fd("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                               "mode=1777,size=67108864") < 0)
        fail(DGRID_STAGE_MOUNT_SHM, errno);
    close(shm);
    close(dev);
}

/* runc's masked paths: a directory gets an empty read-only tmpfs, a file our
 * own /dev/null (the one we just created, not one the rootfs could swap in:
 * CVE-2025-31133). Runs after pivot_root, inside our fresh /proc and /sys. */
static void mask_paths(const char *const *paths) {
    for (; paths && *paths; paths++) {
        int fd = open(*paths, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT || errno == EACCES)
                continue;
            fail(DGRID_STAGE_MASK_PATHS, errno);
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
            fail(DGRID_STAGE_MASK_PATHS, errno);
        int r = S_ISDIR(st.st_mode)
            ? mount_at_fd("tmpfs", fd, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0")
            : mount_at_fd("/dev/null", fd, NULL, MS_BIND, NULL);
        if (r < 0)
            fail(DGRID_STAGE_MASK_PATHS, errno);
        close(fd);
    }
}

static void readonly_paths(const char *const *paths) {
    for (; paths && *paths; paths++) {
        int fd = open(*paths, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT || errno == EACCES)
                continue;
            fail(DGRID_STAGE_READONLY_PATHS, errno);
        }
        /* Bind onto itself, then remount read-only keeping the flags the
         * kernel locks in a user namespace (procfs is nosuid,nodev,noexec). */
        if (mount_at_fd(*paths, fd, NULL, MS_BIND | MS_REC, NULL) < 0)
            fail(DGRID_STAGE_READONLY_PATHS, errno);
        close(fd);
        if (mount(NULL, *paths, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            fail(DGRID_STAGE_READONLY_PATHS, errno);
    }
}

/* "/proc/self/fd/<fd>/<name>" into buf, without snprintf. */
static void fd_child_path(char *buf, size_t size, int fd, const char *name) {
    char base[32];
    dgrid_fd_path(base, fd);
    size_t n = 0;
    for (const char *p = base; *p && n + 1 < size; p++)
        buf[n++] = *p;
    if (n + 1 < size)
        buf[n++] = '/';
    for (const char *p = name; *p && n + 1 < size; p++)
        buf[n++] = *p;
    buf[n] = 0;
}

/* "l<i>" into buf (at least 8 bytes). */
static void lower_name(char *buf, int i) {
    char digits[8];
    int d = 0;
    do {
        digits[d++] = (char)('0' + i % 10);
        i /= 10;
    } while (i > 0 && d < 7);
    buf[0] = 'l';
    for (int k = 0; k < d; k++)
        buf[1 + k] = digits[d - 1 - k];
    buf[1 + d] = 0;
}

static size_t append(char *buf, size_t n, size_t size, const char *text) {
    for (; *text && n + 1 < size; text++)
        buf[n++] = *text;
    buf[n] = 0;
    return n;
}

/* The overlay's options: every path through the staging tmpfs's descriptor,
 * so no host path (and no host directory search permission) is involved. */
static char overlay_data[4096];

static void build_overlay_data(int staging, int lowers, int writable) {
    char path[64], name[8];
    size_t n = append(overlay_data, 0, sizeof overlay_data, "userxattr,lowerdir=");
    for (int i = lowers - 1; i >= 0; i--) {
        lower_name(name, i);
        fd_child_path(path, sizeof path, staging, name);
        n = append(overlay_data, n, sizeof overlay_data, path);
        n = append(overlay_data, n, sizeof overlay_data, ":");
    }
    fd_child_path(path, sizeof path, staging, "mp");
    n = append(overlay_data, n, sizeof overlay_data, path);
    if (writable) {
        fd_child_path(path, sizeof path, staging, "upper");
        n = append(overlay_data, n, sizeof overlay_data, ",upperdir=");
        n = append(overlay_data, n, sizeof overlay_data, path);
        fd_child_path(path, sizeof path, staging, "work");
        n = append(overlay_data, n, sizeof overlay_data, ",workdir=");
        n = append(overlay_data, n, sizeof overlay_data, path);
    }
    if (n + 1 >= sizeof overlay_data)
        fail(DGRID_STAGE_MOUNT_OVERLAY, E2BIG);
}

/* The directories the sandbox's own mounts go on, as the lowest overlay
 * layer: they exist whatever the image has, and no layer is ever written. */
static void make_mount_point_layer(int staging, const struct dgrid_spawn_config *c) {
    static const char *const dirs[] = { "mp", "mp/proc", "mp/dev", "mp/tmp", "mp/sys" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (mkdirat(staging, dirs[i], 0755) < 0)
            fail(DGRID_STAGE_STAGING, errno);
    if (c->volume_count <= 0)
        return;
    int mp = openat(staging, "mp", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (mp < 0)
        fail(DGRID_STAGE_STAGING, errno);
    for (int i = 0; i < c->volume_count; i++)
        if (mkdirat(mp, c->volume_names[i], 0755) < 0)
            fail(DGRID_STAGE_VOLUME, errno);
    close(mp);
}

/* A rootless child's own clone of a volume's host directory: read-only. */
static int clone_volume(const char *path) {
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
    if (fd < 0)
        fail(DGRID_STAGE_VOLUME, errno);
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
        fail(DGRID_STAGE_VOLUME, errno);
    return fd;
}

/* Each volume's tree onto its mount point in the root, never through a
 * symlink an image put there (open_mount_dir). */
static void mount_volumes(const struct dgrid_spawn_config *c, int rootfd, int *volumes) {
    for (int i = 0; i < c->volume_count; i++) {
        int point = open_mount_dir(rootfd, c->volume_names[i], DGRID_STAGE_VOLUME);
        if (syscall(SYS_move_mount, volumes[i], "", point, "",
                    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            fail(DGRID_STAGE_VOLUME, errno);
        close(volumes[i]);
        close(point);
    }
}

/*
 * Build the sandbox's root in a staging tmpfs on the run's anchor directory
 * and return an O_PATH descriptor of it (see dgrid_spawn.h, "the root").
 * `trees` are the lowers the parent sent (detached, idmapped mounts), or -1
 * each when this child clones them from lower_paths itself (rootless).
 */
static int build_root(const struct dgrid_spawn_config *c, int *trees) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(DGRID_STAGE_MOUNT_PRIVATE, errno);
    /* Path lookups first, with the credentials we were cloned with (the
     * worker's: they own the state directory), before becoming the
     * namespace's root (an id no host directory belongs to). */
    int anchor = open(c->anchor, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (anchor < 0)
        fail(DGRID_STAGE_STAGING, errno);
    for (int i = 0; i < c->lower_count; i++) {
        if (trees[i] >= 0)
            continue;
        trees[i] = (int)syscall(SYS_open_tree, AT_FDCWD, c->lower_paths[i],
                                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (trees[i] < 0)
            fail(DGRID_STAGE_BIND_ROOTFS, errno);
    }
    int *volumes = trees + c->lower_count;
    for (int i = 0; i < c->volume_count; i++)
        if (volumes[i] < 0)
            volumes[i] = clone_volume(c->volume_paths[i]);
    if (c->become_ns_root &&
        (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0))
        fail(DGRID_STAGE_NS_ROOT, errno);

    /* The staging tmpfs bounds what a writable root can hold (the upper). */
    int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", c->staging_size, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        fail(DGRID_STAGE_STAGING, errno);
    int staging = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (staging < 0)
        fail(DGRID_STAGE_STAGING, errno);
    close(fs);
    if (syscall(SYS_move_mount, staging, "", anchor, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        fail(DGRID_STAGE_STAGING, errno);
    close(anchor);
    if (mkdirat(staging, "root", 0755) < 0)
        fail(DGRID_STAGE_STAGING, errno);

    if (!c->overlay) {
        if (syscall(SYS_move_mount, trees[0], "", staging, "root", MOVE_MOUNT_F_EMPTY_PATH) < 0)
            fail(DGRID_STAGE_BIND_ROOTFS, errno);
        close(trees[0]);
    } else {
        make_mount_point_layer(staging, c);
        char name[8];
        for (int i = 0; i < c->lower_count; i++) {
            lower_name(name, i);
            if (mkdirat(staging, name, 0755) < 0)
                fail(DGRID_STAGE_STAGING, errno);
            if (syscall(SYS_move_mount, trees[i], "", staging, name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                fail(DGRID_STAGE_BIND_ROOTFS, errno);
            close(trees[i]);
        }
        if (!c->readonly_rootfs && (mkdirat(staging, "upper", 0755) < 0 || mkdirat(staging, "work", 0755) < 0))
            fail(DGRID_STAGE_STAGING, errno);
        build_overlay_data(staging, c->lower_count, !c->readonly_rootfs);
        char target[64];
        fd_child_path(target, sizeof target, staging, "root");
        if (mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, overlay_data) < 0)
            fail(DGRID_STAGE_MOUNT_OVERLAY, errno);
    }
    /* Through the staging root, so the lookup crosses into what is mounted on "root". */
    int rootfd = openat(staging, "root", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        fail(DGRID_STAGE_OPEN_ROOTFS, errno);
    close(staging);
    mount_volumes(c, rootfd, volumes);
    return rootfd;
}

static void enter_rootfs(const struct dgrid_spawn_config *c, int rootfd) {
    mount_fresh(rootfd, "proc", DGRID_STAGE_ROOTFS_PROC, DGRID_STAGE_MOUNT_PROC,
                "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    build_dev(rootfd, c->user_namespace);
    mount_fresh(rootfd, "tmp", DGRID_STAGE_ROOTFS_TMP, DGRID_STAGE_MOUNT_TMP,
                "tmpfs", MS_NOSUID | MS_NODEV, c->tmp_mount_data);
    if (c->mount_sysfs)
        mount_fresh(rootfd, "sys", DGRID_STAGE_ROOTFS_SYS, DGRID_STAGE_MOUNT_SYS,
                    "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);

    /* pivot_root(".", ".") stacks the old root on the new one; detaching "."
     * then drops the host's whole tree from this mount namespace. */
    if (fchdir(rootfd) < 0)
        fail(DGRID_STAGE_PIVOT_ROOT, errno);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        fail(DGRID_STAGE_PIVOT_ROOT, errno);
    if (umount2(".", MNT_DETACH) < 0)
        fail(DGRID_STAGE_DETACH_OLD_ROOT, errno);
    if (chdir("/") < 0)
        fail(DGRID_STAGE_DETACH_OLD_ROOT, errno);
    close(rootfd);

    mask_paths(c->masked_paths);
    readonly_paths(c->readonly_paths);

    /* Keep flags a user namespace locks (statfs reports them), add nosuid and nodev. */
    struct statfs sf;
    if (statfs("/", &sf) < 0)
        fail(DGRID_STAGE_REMOUNT_ROOT, errno);
    unsigned long keep = (unsigned long)sf.f_flags &
        (MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_RDONLY);
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | keep;
    if (c->readonly_rootfs)
        flags |= MS_RDONLY;
    if (mount(NULL, "/", NULL, flags, NULL) < 0)
        fail(DGRID_STAGE_REMOUNT_ROOT, errno);
}

static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        fail(DGRID_STAGE_LOOPBACK, errno);
    struct ifreq req;
    memset(&req, 0, sizeof req);
    dgrid_strlcpy(req.ifr_name, "lo", sizeof req.ifr_name);
    if (ioctl(s, SIOCGIFFLAGS, &req) < 0)
        fail(DGRID_STAGE_LOOPBACK, errno);
    req.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &req) < 0)
        fail(DGRID_STAGE_LOOPBACK, errno);
    close(s);
}

/* Drop to the task's identity with no capability in any of the five sets.
 * The bounding set needs CAP_SETPCAP, so it goes before the uid change. */
static void drop_privileges(const struct dgrid_spawn_config *c) {
    for (int cap = 0; cap <= c->cap_last_cap; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            fail(DGRID_STAGE_DROP_BOUNDING, errno);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        fail(DGRID_STAGE_DROP_BOUNDING, errno);
    /* In a one-id user namespace setgroups is denied by design (and the host
     * user's groups stay, unmapped); everywhere else, clear them. */
    if (c->clear_groups && syscall(SYS_setgroups, 0, NULL) < 0)
        fail(DGRID_STAGE_SETGROUPS, errno);
    if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0)
        fail(DGRID_STAGE_SETGID, errno);
    if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
        fail(DGRID_STAGE_SETUID, errno);
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) < 0)
        fail(DGRID_STAGE_CAPSET, errno);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(DGRID_STAGE_NO_NEW_PRIVS, errno);
    /* A credential change cleared the parent-death signal; set it again. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

static void reset_signals(void) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Hand the seccomp program to dgrid-init in a memfd at DGRID_INIT_FD_SECCOMP
 * (a pipe could block: an account over its pipe quota gets one-page pipes). */
static void hand_over_seccomp(const struct dgrid_spawn_config *c) {
    if (!c->seccomp_filter || c->seccomp_filter_len == 0)
        return;
    int fd = (int)syscall(SYS_memfd_create, "dgrid-seccomp", (unsigned)MFD_CLOEXEC);
    if (fd < 0)
        fail(DGRID_STAGE_SECCOMP_HANDOVER, errno);
    size_t len = (size_t)c->seccomp_filter_len * sizeof(struct sock_filter);
    const char *p = (const char *)c->seccomp_filter;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail(DGRID_STAGE_SECCOMP_HANDOVER, n < 0 ? errno : EIO);
        p += n;
        len -= (size_t)n;
    }
    /* The slot is free, so the memfd usually lands right in it. */
    if (fd == DGRID_INIT_FD_SECCOMP) {
        if (fcntl(fd, F_SETFD, 0) < 0)
            fail(DGRID_STAGE_SECCOMP_HANDOVER, errno);
        return;
    }
    if (dup3(fd, DGRID_INIT_FD_SECCOMP, 0) < 0)
        fail(DGRID_STAGE_SECCOMP_HANDOVER, errno);
    close(fd);
}

/* pid 1 stops being a copy of the worker: exec dgrid-init from the sealed
 * memfd the parent prepared. It inherits only the error and status pipes, the
 * filter, stdio and the task's argv and environment. */
static void __attribute__((noreturn)) exec_init(const struct dgrid_spawn_config *c) {
    hand_over_seccomp(c);
    if (fcntl(FD_ERROR, F_SETFD, 0) < 0 || fcntl(FD_STATUS, F_SETFD, 0) < 0)
        fail(DGRID_STAGE_EXEC_INIT, errno);
    syscall(SYS_execveat, FD_INIT, "", c->init_argv, c->envp, AT_EMPTY_PATH);
    int err = errno;
    fcntl(FD_ERROR, F_SETFD, FD_CLOEXEC);
    fail(DGRID_STAGE_EXEC_INIT, err);
}

/* Wait for the parent's go byte; with it come the detached lower trees in
 * root mode (SCM_RIGHTS, close-on-exec). trees[i] is -1 where none came. */
static void receive_go(int sock, int expected, int *trees) {
    static union {
        char buf[CMSG_SPACE(sizeof(int) * (DGRID_MAX_LOWERS + DGRID_MAX_VOLUMES))];
        struct cmsghdr align;
    } control;
    for (int i = 0; i < DGRID_MAX_LOWERS + DGRID_MAX_VOLUMES; i++)
        trees[i] = -1;
    char go = 0;
    struct iovec iov = { &go, 1 };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n != 1)
        fail(DGRID_STAGE_SYNC_WAIT, n < 0 ? errno : EPIPE);
    if (msg.msg_flags & MSG_CTRUNC)
        fail(DGRID_STAGE_SYNC_WAIT, EMSGSIZE);
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int count = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (count != expected)
            fail(DGRID_STAGE_SYNC_WAIT, EPROTO);
        memcpy(trees, CMSG_DATA(cm), sizeof(int) * (size_t)count);
    }
}

/* Move this process (one thread: a clone of one thread of the worker) into
 * the sandbox's cgroup v1 groups through the `tasks` files the parent opened
 * (see cgroup_join_fds in dgrid_spawn.h), then close them: the task never
 * holds a descriptor of a host cgroup file. */
static void join_cgroups(const struct dgrid_spawn_config *c) {
    for (int i = 0; i < c->cgroup_join_count; i++) {
        ssize_t n;
        do {
            n = write(c->cgroup_join_fds[i], "0", 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1)
            fail(DGRID_STAGE_JOIN_CGROUP, n < 0 ? errno : EIO);
        close(c->cgroup_join_fds[i]);
    }
}

static int child_main(void *arg) {
    struct child_context *ctx = arg;
    const struct dgrid_spawn_config *c = ctx->config;
    error_fd = ctx->error_write;
    close(ctx->sync_write);
    close(ctx->error_read);
    close(ctx->status_read);
    /* If the thread that cloned us dies, so does the sandbox. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    reset_signals();

    int trees[DGRID_MAX_LOWERS + DGRID_MAX_VOLUMES];
    receive_go(ctx->sync_read, c->lower_count + c->volume_count, trees);
    close(ctx->sync_read);
    /* Before anything else runs here, and before the cgroup namespace is
     * unshared below, so its root is the sandbox's own group. */
    join_cgroups(c);
    /* This process is a copy of the worker (its memory, its environment, its
     * credentials). Non-dumpable, nothing in the sandbox can open our
     * /proc/<pid>/{mem,environ,exe} or ptrace us, in any uid mapping, until
     * exec_init() replaces the image; a credential change only ever lowers
     * the flag. Not earlier: a rootless parent writes our uid_map, which a
     * non-dumpable process's /proc files (owned by root then) would refuse.
     * Until here nothing else runs in the sandbox: we are its only process. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    umask(0);
    int rootfd = settle_fds(ctx, build_root(c, trees));

    /* Unshared only now that we are in our cgroup (join_cgroups, or the
     * parent's write before the go byte), so the namespace's root is the
     * sandbox's own group. */
    if (c->new_cgroup_namespace && unshare(CLONE_NEWCGROUP) < 0)
        fail(DGRID_STAGE_UNSHARE_CGROUP, errno);
    if (setsid() < 0)
        fail(DGRID_STAGE_SETSID, errno);
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
        fail(DGRID_STAGE_HOSTNAME, errno);

    enter_rootfs(c, rootfd);
    if (c->loopback_up)
        loopback_up();
    for (int i = 0; i < c->rlimit_count; i++) {
        struct rlimit rl = { c->rlimits[i].soft, c->rlimits[i].hard };
        if (setrlimit(c->rlimits[i].resource, &rl) < 0)
            fail(DGRID_STAGE_RLIMITS, errno);
    }
    drop_privileges(c);
    if (chdir(c->workdir) < 0)
        fail(DGRID_STAGE_WORKDIR, errno);

    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(FD_STDOUT, 1) < 0 || dup2(FD_STDERR, 2) < 0)
        fail(DGRID_STAGE_STDIO, errno);
    close(null);
    close(FD_STDOUT);
    close(FD_STDERR);
    umask(022);
    exec_init(c);
}

static int make_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

int dgrid_spawn(const struct dgrid_spawn_config *config, struct dgrid_child *child) {
    int sync_pipe[2], error_pipe[2], status_pipe[2];
    int r;
    /* A socket, not a pipe: the go byte can carry descriptors. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pipe) < 0)
        return -errno;
    if ((r = make_pipe(error_pipe)) < 0) {
        close(sync_pipe[0]); close(sync_pipe[1]);
        return r;
    }
    if ((r = make_pipe(status_pipe)) < 0) {
        close(sync_pipe[0]); close(sync_pipe[1]);
        close(error_pipe[0]); close(error_pipe[1]);
        return r;
    }
    struct child_context ctx = {
        .config = config,
        .sync_read = sync_pipe[0], .sync_write = sync_pipe[1],
        .error_read = error_pipe[0], .error_write = error_pipe[1],
        .status_read = status_pipe[0], .status_write = status_pipe[1],
    };

    /* The child does not share our memory (no CLONE_VM): it runs on a private
     * copy of this stack, so we can unmap ours as soon as clone returns. */
    const size_t stack_size = 256 * 1024;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        r = -errno;
        goto close_all;
    }
    int pidfd = -1;
    pid_t pid = clone(child_main, (char *)stack + stack_size,
                      config->namespaces | CLONE_PIDFD | SIGCHLD, &ctx, &pidfd);
    r = pid < 0 ? -errno : 0;
    munmap(stack, stack_size);
    if (r < 0)
        goto close_all;

    close(sync_pipe[0]);
    close(error_pipe[1]);
    close(status_pipe[1]);
    child->pid = pid;
    child->pidfd = pidfd;
    child->sync_fd = sync_pipe[1];
    child->error_fd = error_pipe[0];
    child->status_fd = status_pipe[0];
    return 0;

close_all:
    close(sync_pipe[0]); close(sync_pipe[1]);
    close(error_pipe[0]); close(error_pipe[1]);
    close(status_pipe[0]); close(status_pipe[1]);
    return r;
}
