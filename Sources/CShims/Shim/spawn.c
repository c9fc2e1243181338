/*
 * The spawn path: clone the sandbox's pid 1, build its filesystem, drop every
 * privilege, fork the task, reap. See dgrid_spawn.h for the contract.
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

/* Fixed descriptor slots in pid 1 after the shuffle in settle_fds(). */
enum { FD_ERROR = 3, FD_STATUS = 4, FD_STDOUT = 5, FD_STDERR = 6, FD_FIRST_FREE = 7 };

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

/* Move the four descriptors pid 1 keeps to fixed slots and close everything
 * else the parent leaked into us: a host directory fd reaching the task is
 * CVE-2024-21626. All four stay close-on-exec, so the task gets only 0-2. */
static void settle_fds(struct child_context *ctx) {
    const struct dgrid_spawn_config *c = ctx->config;
    int keep[4] = { ctx->error_write, ctx->status_write, c->stdout_fd, c->stderr_fd };
    int high[4];
    for (int i = 0; i < 4; i++) {
        high[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, 64);
        if (high[i] < 0)
            fail(DGRID_STAGE_CLOSE_FDS, errno);
    }
    if (syscall(SYS_close_range, 3U, 63U, 0U) < 0)
        fail(DGRID_STAGE_CLOSE_FDS, errno);
    for (int i = 0; i < 4; i++) {
        if (dup3(high[i], FD_ERROR + i, O_CLOEXEC) < 0)
            fail(DGRID_STAGE_CLOSE_FDS, errno);
    }
    error_fd = FD_ERROR;
    if (syscall(SYS_close_range, (unsigned)FD_FIRST_FREE, ~0U, 0U) < 0)
        fail(DGRID_STAGE_CLOSE_FDS, errno);
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

static void enter_rootfs(const struct dgrid_spawn_config *c) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(DGRID_STAGE_MOUNT_PRIVATE, errno);
    if (c->overlay_data) {
        /* lowerdir entries are relative to the layer store: resolve them from there. */
        if (chdir(c->overlay_base) < 0 ||
            mount("overlay", c->rootfs, "overlay", MS_NOSUID | MS_NODEV, c->overlay_data) < 0)
            fail(DGRID_STAGE_MOUNT_OVERLAY, errno);
    }
    if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        fail(DGRID_STAGE_BIND_ROOTFS, errno);
    /* Opened after the bind, so the fd names the new mount, not the directory under it. */
    int rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        fail(DGRID_STAGE_OPEN_ROOTFS, errno);

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

static void __attribute__((noreturn)) exec_task(const struct dgrid_spawn_config *c) {
    if (c->seccomp_filter && c->seccomp_filter_len > 0) {
        struct sock_fprog prog = { c->seccomp_filter_len, (struct sock_filter *)c->seccomp_filter };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
            fail(DGRID_STAGE_SECCOMP, errno);
    }
    /* Like execvp: ENOENT/ENOTDIR mean "try the next PATH entry"; any other
     * error (EACCES, ENOEXEC…) is the more useful one to report. */
    int err = ENOENT;
    for (const char *const *p = c->exec_paths; p && *p; p++) {
        execve(*p, c->argv, c->envp);
        if (errno != ENOENT && errno != ENOTDIR)
            err = errno;
    }
    fail(DGRID_STAGE_EXEC, err);
}

static int exec_task_entry(void *config) {
    exec_task(config);
}

static volatile pid_t task_pid;

static void forward_signal(int sig) {
    int saved = errno;
    if (task_pid > 0)
        kill(task_pid, sig);
    errno = saved;
}

/* pid 1 of the sandbox: reap every child, forward termination signals, and
 * exit with the task's status once the task itself is gone (the kernel then
 * kills whatever the task left behind in the namespace). */
static void __attribute__((noreturn)) reap_until_task_exits(pid_t task) {
    task_pid = task;
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct sigaction fwd;
    memset(&fwd, 0, sizeof fwd);
    fwd.sa_handler = forward_signal;
    static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &fwd, NULL);
    for (;;) {
        int status = 0;
        pid_t pid = wait4(-1, &status, 0, NULL);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            _exit(125);
        }
        if (pid != task)
            continue;
        dgrid_write_all(FD_STATUS, &status, sizeof status);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
}

/* pid 1 is a copy of dgrid: without this the task would read the host-side
 * command line (rootfs path and all) in /proc/1/cmdline. The argument area is
 * our own (copied) stack memory, so we overwrite it in place; its bounds are
 * fields 48 and 49 of /proc/self/stat. Best effort. */
static void rename_pid1(void) {
    static const char name[] = "dgrid-init";
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
    char stat[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
        return;
    stat[n] = 0;
    char *p = stat + n;
    while (p > stat && *p != ')')
        p--;
    unsigned long fields[2] = { 0, 0 };
    int field = 2;  /* the ')' closes field 2 (comm) */
    for (; *p && field < 49; p++) {
        if (*p != ' ')
            continue;
        field++;
        if (field >= 48) {
            unsigned long v = 0;
            for (char *q = p + 1; *q >= '0' && *q <= '9'; q++)
                v = v * 10 + (unsigned long)(*q - '0');
            fields[field - 48] = v;
        }
    }
    char *start = (char *)fields[0], *end = (char *)fields[1];
    if (!start || end <= start + sizeof name)
        return;
    for (char *c = start; c < end; c++)
        *c = c - start < (long)sizeof name ? name[c - start] : 0;
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

    char go = 0;
    ssize_t n;
    do {
        n = read(ctx->sync_read, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1)
        fail(DGRID_STAGE_SYNC_WAIT, n < 0 ? errno : EPIPE);
    close(ctx->sync_read);
    settle_fds(ctx);
    rename_pid1();
    umask(0);

    /* Unshared only now that the parent has moved us into our cgroup, so the
     * namespace's root is the sandbox's own group. */
    if (c->new_cgroup_namespace && unshare(CLONE_NEWCGROUP) < 0)
        fail(DGRID_STAGE_UNSHARE_CGROUP, errno);
    if (setsid() < 0)
        fail(DGRID_STAGE_SETSID, errno);
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
        fail(DGRID_STAGE_HOSTNAME, errno);

    enter_rootfs(c);
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

    /* vfork-style (as posix_spawn does): the task borrows pid 1's memory until
     * its execve, so the kernel does not copy dgrid's whole address space a
     * second time. pid 1 is suspended meanwhile; the task runs on its own
     * stack, a static buffer in pid 1's private copy of memory. Not fork():
     * glibc's fork runs atfork handlers that may take locks held by threads
     * that do not exist here. */
    static char task_stack[64 * 1024] __attribute__((aligned(16)));
    pid_t task = clone(exec_task_entry, task_stack + sizeof task_stack,
                       CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)c);
    if (task < 0)
        fail(DGRID_STAGE_FORK_TASK, errno);
    close(FD_ERROR);
    error_fd = -1;
    reap_until_task_exits(task);
}

static int make_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

int dgrid_spawn(const struct dgrid_spawn_config *config, struct dgrid_child *child) {
    int sync_pipe[2], error_pipe[2], status_pipe[2];
    int r;
    if ((r = make_pipe(sync_pipe)) < 0)
        return r;
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
