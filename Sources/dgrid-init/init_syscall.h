/*
 * The system calls dgrid-init makes, without a C library (init.c says why).
 * Each returns what the kernel returned: a value >= 0, or -errno.
 * x86-64 and arm64; constants come from the kernel's own uapi headers.
 */
#ifndef DGRID_INIT_SYSCALL_H
#define DGRID_INIT_SYSCALL_H

#include <asm/unistd.h>
#include <linux/errno.h>
#include <linux/fcntl.h>
#include <linux/prctl.h>

/* Signal numbers (the same on x86-64 and arm64). Not from <asm/signal.h>,
 * whose sigset_t clashes with the C library's in dgrid_spawn.h's includes. */
enum { SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGUSR1 = 10, SIGUSR2 = 12, SIGTERM = 15, SIGCHLD = 17 };

#if defined(__x86_64__)
static inline long init_syscall6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
static inline long init_syscall6(long n, long a, long b, long c, long d, long e, long f) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}
#else
#error "dgrid-init: system calls for this architecture are not written yet (init_syscall.h)"
#endif

#define INIT_SYSCALL(n, a, b, c, d) init_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

static inline long sys_write(int fd, const void *buf, unsigned long len) {
    return INIT_SYSCALL(__NR_write, fd, buf, len, 0);
}
static inline long sys_pread(int fd, void *buf, unsigned long len, long offset) {
    return INIT_SYSCALL(__NR_pread64, fd, buf, len, offset);
}
static inline long sys_close(int fd) { return INIT_SYSCALL(__NR_close, fd, 0, 0, 0); }
static inline long sys_fcntl(int fd, int cmd, long arg) { return INIT_SYSCALL(__NR_fcntl, fd, cmd, arg, 0); }
static inline long sys_prctl(int option, unsigned long arg) { return INIT_SYSCALL(__NR_prctl, option, arg, 0, 0); }
static inline long sys_seccomp(unsigned op, unsigned flags, void *args) {
    return INIT_SYSCALL(__NR_seccomp, op, flags, args, 0);
}
static inline long sys_execve(const char *path, char *const *argv, char *const *envp) {
    return INIT_SYSCALL(__NR_execve, path, argv, envp, 0);
}
static inline long sys_kill(int pid, int sig) { return INIT_SYSCALL(__NR_kill, pid, sig, 0, 0); }
static inline long sys_wait4(long pid, int *status, int options) {
    return INIT_SYSCALL(__NR_wait4, pid, status, options, 0);
}
/* fork: clone with SIGCHLD and nothing shared; the child returns 0 on its own
 * copy of the (few) pages, so plain C is safe on both sides. */
static inline long sys_fork(void) { return INIT_SYSCALL(__NR_clone, SIGCHLD, 0, 0, 0); }
static inline void __attribute__((noreturn)) sys_exit(int code) {
    for (;;)
        INIT_SYSCALL(__NR_exit_group, code, 0, 0, 0);
}

/* rt_sigaction's own layout (handler, flags, restorer, mask), not libc's. */
struct init_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};
enum { INIT_SA_RESTORER = 0x04000000 };

#if defined(__x86_64__)
/* x86-64 returns from a handler through the restorer the caller names. */
void init_sigreturn(void);
__asm__(".text\n"
        ".type init_sigreturn,@function\n"
        "init_sigreturn:\n"
        "  mov $15, %rax\n" /* __NR_rt_sigreturn */
        "  syscall\n");
#endif

/* Installs handler for sig; the mask and flags are empty, so a handled signal
 * interrupts wait4 with EINTR (the caller loops). */
static inline long sys_set_handler(int sig, void (*handler)(int)) {
    struct init_sigaction action = { handler, 0, 0, 0 };
#if defined(__x86_64__)
    action.flags = INIT_SA_RESTORER;
    action.restorer = init_sigreturn;
#endif
    return INIT_SYSCALL(__NR_rt_sigaction, sig, &action, 0, sizeof action.mask);
}

#endif
