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
 *
 * Freestanding: no C library, only the system calls in init_syscall.h. It is
 * copied into a memfd and exec'd on every sandbox start, so its size and its
 * start-up are on the start path (docs/ARCHITECTURE.md §2): static glibc made
 * it 700 KB, and glibc's start-up asks the CPU for its cache sizes with CPUID,
 * which traps to the hypervisor on a virtual machine. This program is a few
 * KB and runs nothing before main.
 */
/* The hand-over protocol, shared with the shim; headers only, nothing linked. */
#include "../CShims/Shim/include/dgrid_spawn.h"
#include "init_syscall.h"

#include <linux/filter.h>
#include <linux/seccomp.h>

/* swiftc links every executable with swiftrt.o, whose constructor registers
 * the image with the Swift runtime. There is no Swift here, no runtime is
 * linked and no constructor runs (init_start.c): these stand in for the two
 * symbols swiftrt.o refers to. */
void swift_addNewDSOImage(const void *image);
void swift_addNewDSOImage(const void *image) { (void)image; }
int _swift_backtrace_isThunkFunction(const char *name);
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }

/* The most instructions a seccomp program may have (BPF_MAXINSNS). */
enum { MAX_FILTER = 4096 };

static struct sock_filter filter[MAX_FILTER];
static unsigned short filter_len;
static char *const *candidates;
static long candidate_count;
static char *const *task_argv;
static char *const *task_envp;
static volatile long task_pid;

static void write_all(int fd, const void *buf, unsigned long len) {
    const char *p = buf;
    while (len > 0) {
        long n = sys_write(fd, p, len);
        if (n == -EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (unsigned long)n;
    }
}

static void __attribute__((noreturn)) fail(int stage, long err) {
    struct dgrid_setup_error e = { stage, (int)err };
    write_all(DGRID_INIT_FD_ERROR, &e, sizeof e);
    sys_exit(125);
}

/* The filter pid 1 left at DGRID_INIT_FD_SECCOMP, if any: read to its end,
 * which must be a whole number of instructions and at most MAX_FILTER. */
static void read_filter(void) {
    char *buf = (char *)filter;
    unsigned long got = 0;
    for (;;) {
        /* One byte more than fits, so an oversized program is seen. */
        char spill;
        long n = got < sizeof filter
            ? sys_pread(DGRID_INIT_FD_SECCOMP, buf + got, sizeof filter - got, (long)got)
            : sys_pread(DGRID_INIT_FD_SECCOMP, &spill, 1, (long)got);
        if (n == -EINTR)
            continue;
        if (n == -EBADF && got == 0)
            return;                       /* no filter: the fd is closed */
        if (n < 0)
            fail(DGRID_STAGE_INIT, -n);
        if (n == 0)
            break;
        if (got >= sizeof filter)
            fail(DGRID_STAGE_INIT, EINVAL);
        got += (unsigned long)n;
    }
    if (got == 0 || got % sizeof(struct sock_filter) != 0)
        fail(DGRID_STAGE_INIT, EINVAL);
    filter_len = (unsigned short)(got / sizeof(struct sock_filter));
    sys_close(DGRID_INIT_FD_SECCOMP);
}

/* argv: dgrid-init COUNT CANDIDATE... TASK_ARGV... */
static void parse_arguments(int argc, char **argv, char **envp) {
    long count = 0;
    const char *digit = argc > 1 ? argv[1] : "";
    if (!*digit)
        fail(DGRID_STAGE_INIT, EINVAL);
    for (; *digit; digit++) {
        if (*digit < '0' || *digit > '9' || count > 100000)
            fail(DGRID_STAGE_INIT, EINVAL);
        count = count * 10 + (*digit - '0');
    }
    if (count < 1 || count > argc - 3)
        fail(DGRID_STAGE_INIT, EINVAL);
    candidates = argv + 2;
    candidate_count = count;
    task_argv = argv + 2 + count;
    task_envp = envp;
}

/* The task, in a fork of pid 1 (a few pages to copy) until its execve. */
static void __attribute__((noreturn)) exec_task(void) {
    if (filter_len > 0) {
        struct sock_fprog prog = { filter_len, filter };
        long r = sys_seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog);
        if (r < 0)
            fail(DGRID_STAGE_SECCOMP, -r);
    }
    /* Like execvp: ENOENT/ENOTDIR mean "try the next PATH entry"; any other
     * error (EACCES, ENOEXEC…) is the more useful one to report. */
    long err = ENOENT;
    for (long i = 0; i < candidate_count; i++) {
        long r = sys_execve(candidates[i], task_argv, task_envp);
        if (r != -ENOENT && r != -ENOTDIR)
            err = -r;
    }
    fail(DGRID_STAGE_EXEC, err);
}

static void forward_signal(int sig) {
    if (task_pid > 0)
        sys_kill((int)task_pid, sig);
}

int init_main(int argc, char **argv, char **envp) {
    /* The kernel already made us non-dumpable (the memfd is execute-only);
     * say so anyway, before anything else, in case the mode was relaxed. */
    sys_prctl(PR_SET_DUMPABLE, 0);
    sys_prctl(PR_SET_NAME, (unsigned long)"dgrid-init");
    if (sys_fcntl(DGRID_INIT_FD_ERROR, F_SETFD, FD_CLOEXEC) < 0 ||
        sys_fcntl(DGRID_INIT_FD_STATUS, F_SETFD, FD_CLOEXEC) < 0)
        sys_exit(125);
    read_filter();
    parse_arguments(argc, argv, envp);

    static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM };
    for (unsigned long i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sys_set_handler(forwarded[i], forward_signal);

    long task = sys_fork();
    if (task == 0)
        exec_task();
    if (task < 0)
        fail(DGRID_STAGE_FORK_TASK, -task);
    task_pid = task;
    /* The task has exec'd (or failed and said so): EOF on the error pipe
     * once the task's copy closes on exec. */
    sys_close(DGRID_INIT_FD_ERROR);

    for (;;) {
        int status = 0;
        long pid = sys_wait4(-1, &status, 0);
        if (pid == -EINTR)
            continue;
        if (pid < 0)
            sys_exit(125);
        if (pid != task)
            continue;
        write_all(DGRID_INIT_FD_STATUS, &status, sizeof status);
        /* WIFEXITED: the low 7 bits are 0; then the code is in bits 8-15. */
        sys_exit((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f));
    }
}
