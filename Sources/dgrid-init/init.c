/*
 * dgrid-init: pid 1 of every sandbox once it is built.
 *
 * The shim's pid 1 (Sources/CShims/Shim/spawn.c) is a clone of the worker. It
 * builds the sandbox, drops every privilege, and then execs this program from
 * a sealed, execute-only memfd, so that no byte of the worker's memory,
 * environment or binary is in the sandbox when the task starts (docs/THREATS.md,
 * T1: runc's CVE-2019-5736 is the shape of what that prevents).
 *
 * Here: forward termination signals, fork the task (which installs the seccomp
 * filter and execs), reap every child, and exit with the task's status once
 * the task is gone; the kernel then kills what it left in the pid namespace.
 * The hand-over protocol is in dgrid_spawn.h.
 */
#define _GNU_SOURCE
#include "dgrid_spawn.h"
/* The shim's own async-signal-safe helpers (dgrid_write_all). */
#include "../CShims/Shim/dgrid_child_util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* swiftc links every executable with swiftrt.o, whose constructor registers
 * the image with the Swift runtime. There is no Swift here, and no runtime is
 * linked (Package.swift): these stand in for the two symbols it refers to. */
void swift_addNewDSOImage(const void *image);
void swift_addNewDSOImage(const void *image) { (void)image; }
int _swift_backtrace_isThunkFunction(const char *name);
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }

/* The most instructions a seccomp program may have (BPF_MAXINSNS). */
enum { MAX_FILTER = 4096 };

static struct sock_filter filter[MAX_FILTER];
static unsigned short filter_len;
static char *const *task_argv;
static char *const *task_envp;
static char **candidates;
static volatile pid_t task_pid;

static void __attribute__((noreturn)) fail(int stage, int err) {
    struct dgrid_setup_error e = { stage, err };
    dgrid_write_all(DGRID_INIT_FD_ERROR, &e, sizeof e);
    _exit(125);
}

/* The filter pid 1 left at DGRID_INIT_FD_SECCOMP, if any. */
static void read_filter(void) {
    struct stat st;
    if (fstat(DGRID_INIT_FD_SECCOMP, &st) < 0) {
        if (errno == EBADF)
            return;
        fail(DGRID_STAGE_INIT, errno);
    }
    if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
        st.st_size > (off_t)sizeof filter)
        fail(DGRID_STAGE_INIT, EINVAL);
    size_t want = (size_t)st.st_size, got = 0;
    while (got < want) {
        ssize_t n = pread(DGRID_INIT_FD_SECCOMP, (char *)filter + got, want - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail(DGRID_STAGE_INIT, n < 0 ? errno : EIO);
        got += (size_t)n;
    }
    filter_len = (unsigned short)(want / sizeof(struct sock_filter));
    close(DGRID_INIT_FD_SECCOMP);
}

static void parse_arguments(int argc, char **argv, char **envp) {
    char *end = NULL;
    long count = argc > 1 ? strtol(argv[1], &end, 10) : -1;
    if (argc < 2 || !end || *end || count < 1 || count > argc - 3)
        fail(DGRID_STAGE_INIT, EINVAL);
    /* Candidates become a NULL-terminated list in place: the slot after the
     * last candidate is the task's argv[0], which we keep a pointer to first. */
    task_argv = argv + 2 + count;
    task_envp = envp;
    candidates = malloc(sizeof(char *) * (size_t)(count + 1));
    if (!candidates)
        fail(DGRID_STAGE_INIT, ENOMEM);
    for (long i = 0; i < count; i++)
        candidates[i] = argv[2 + i];
    candidates[count] = NULL;
}

/* The task, on pid 1's memory (CLONE_VM | CLONE_VFORK) until its execve. */
static int exec_task(void *unused) {
    (void)unused;
    if (filter_len > 0) {
        struct sock_fprog prog = { filter_len, filter };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
            fail(DGRID_STAGE_SECCOMP, errno);
    }
    /* Like execvp: ENOENT/ENOTDIR mean "try the next PATH entry"; any other
     * error (EACCES, ENOEXEC…) is the more useful one to report. */
    int err = ENOENT;
    for (char **p = candidates; *p; p++) {
        execve(*p, task_argv, task_envp);
        if (errno != ENOENT && errno != ENOTDIR)
            err = errno;
    }
    fail(DGRID_STAGE_EXEC, err);
}

static void forward_signal(int sig) {
    int saved = errno;
    if (task_pid > 0)
        kill(task_pid, sig);
    errno = saved;
}

int main(int argc, char **argv, char **envp) {
    /* The kernel already made us non-dumpable (the memfd is execute-only);
     * say so anyway, before anything else, in case the mode was relaxed. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_NAME, (unsigned long)"dgrid-init", 0, 0, 0);
    if (fcntl(DGRID_INIT_FD_ERROR, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(DGRID_INIT_FD_STATUS, F_SETFD, FD_CLOEXEC) < 0)
        _exit(125);
    read_filter();
    parse_arguments(argc, argv, envp);

    struct sigaction fwd;
    memset(&fwd, 0, sizeof fwd);
    fwd.sa_handler = forward_signal;
    static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &fwd, NULL);

    static char task_stack[64 * 1024] __attribute__((aligned(16)));
    pid_t task = clone(exec_task, task_stack + sizeof task_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    if (task < 0)
        fail(DGRID_STAGE_FORK_TASK, errno);
    task_pid = task;
    /* The task has exec'd (or failed and said so): EOF on the error pipe. */
    close(DGRID_INIT_FD_ERROR);

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
        dgrid_write_all(DGRID_INIT_FD_STATUS, &status, sizeof status);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
}
