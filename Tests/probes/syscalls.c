/* Probe run inside the sandbox: tries calls the default profile must refuse
 * and a few it must allow; prints "name=errno" (0 when the call succeeded). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static void report(const char *name, long r) {
    printf("%s=%d\n", name, r < 0 ? errno : 0);
}

static long int80_getpid(void) {
    long ret;
    /* The i386 entry point: eax=20 is getpid there. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");
    if (ret < 0 && ret > -4096) { errno = (int)-ret; return -1; }
    return ret;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("unshare_user", unshare(CLONE_NEWUSER));
    report("unshare_ns", unshare(CLONE_NEWNS));
    report("keyctl", syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0));
    report("add_key", syscall(SYS_add_key, "user", "x", "y", 1, KEY_SPEC_PROCESS_KEYRING));
    report("ptrace", ptrace(PTRACE_TRACEME, 0, 0, 0));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
    report("process_vm_readv", syscall(SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0));
    report("setns", syscall(SYS_setns, 0, 0));
    report("pivot_root", syscall(SYS_pivot_root, "/", "/"));
    report("clone3", syscall(SYS_clone3, NULL, 0));
    long s = socket(AF_ALG, SOCK_SEQPACKET, 0);
    report("socket_alg", s);
    s = socket(AF_VSOCK, SOCK_STREAM, 0);
    report("socket_vsock", s);
    s = socket(AF_INET, SOCK_STREAM, 0);
    report("socket_inet", s);
    report("int80_getpid", int80_getpid());
    report("getpid", getpid());
    report("chroot", chroot("/"));
    return 0;
}
