/* Probe run inside the sandbox: tries calls the default profile must refuse
 * and a few it must allow; prints "name=errno" (0 when the call succeeded). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
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
#ifndef SOCK_PACKET
#define SOCK_PACKET 10
#endif
#ifndef SOCK_DCCP
#define SOCK_DCCP 6
#endif

static void report(const char *name, long r) {
    printf("%s=%d\n", name, r < 0 ? errno : 0);
}

/* socket(2), closing what it made: only whether the filter let it through counts. */
static void report_socket(const char *name, int family, int type, int protocol) {
    int s = socket(family, type, protocol);
    report(name, s);
    if (s >= 0) close(s);
}

static void report_socketpair(const char *name, int family, int type) {
    int pair[2];
    int r = socketpair(family, type, 0, pair);
    report(name, r);
    if (r == 0) { close(pair[0]); close(pair[1]); }
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
    /* Families and protocols that would make the host kernel load a module. */
    report_socket("socket_alg", AF_ALG, SOCK_SEQPACKET, 0);
    report_socket("socket_vsock", AF_VSOCK, SOCK_STREAM, 0);
    report_socket("socket_packet", AF_PACKET, SOCK_DGRAM, 0);
    report_socket("socket_appletalk", AF_APPLETALK, SOCK_DGRAM, 0);
    report_socket("socket_bluetooth", AF_BLUETOOTH, SOCK_STREAM, 3 /* BTPROTO_RFCOMM */);
    report_socket("socket_x25", AF_X25, SOCK_SEQPACKET, 0);
    report_socket("socket_inet_sock_packet", AF_INET, SOCK_PACKET, 0);
    report_socket("socket_inet_sctp", AF_INET, SOCK_STREAM, IPPROTO_SCTP);
    report_socket("socket_inet6_sctp", AF_INET6, SOCK_SEQPACKET, IPPROTO_SCTP);
    report_socket("socket_inet_dccp", AF_INET, SOCK_DCCP, IPPROTO_DCCP);
    report_socket("socket_netlink_crypto", AF_NETLINK, SOCK_RAW, NETLINK_CRYPTO);
    report_socket("socket_netlink_sock_diag", AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
    report_socketpair("socketpair_inet", AF_INET, SOCK_STREAM);
    /* What a loopback-only task uses. */
    report_socket("socket_inet", AF_INET, SOCK_STREAM, 0);
    report_socket("socket_inet_tcp", AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
    report_socket("socket_inet_udp", AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    report_socket("socket_inet6", AF_INET6, SOCK_STREAM, 0);
    report_socket("socket_inet6_udp", AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    report_socket("socket_unix", AF_UNIX, SOCK_STREAM, 0);
    report_socket("socket_unix_dgram", AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    report_socket("socket_netlink_route", AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    report_socketpair("socketpair_unix", AF_UNIX, SOCK_STREAM);
    char ldt[16];
    report("modify_ldt", syscall(SYS_modify_ldt, 0, ldt, sizeof ldt));
#ifdef SYS_memfd_secret
    report("memfd_secret", syscall(SYS_memfd_secret, 0));
#else
    report("memfd_secret", syscall(447, 0));
#endif
    report("int80_getpid", int80_getpid());
    report("getpid", getpid());
    report("chroot", chroot("/"));
    return 0;
}
