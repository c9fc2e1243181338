import Foundation
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// Proves the compiled default profile on the real kernel. Swift cannot fork, so a
/// small C probe (compiled here with `cc`) installs the BPF exactly as the shim
/// does, with no_new_privs and one seccomp() call, then tries calls and prints
/// `name=ok` or `name=errno N` for each; given a command, it execs it confined.
@Suite(.system) struct SeccompKernelTests {
    static let probeSource = #"""
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <linux/filter.h>
        #include <linux/seccomp.h>
        #include <sched.h>
        #include <signal.h>
        #include <stdio.h>
        #include <sys/mount.h>
        #include <sys/prctl.h>
        #include <sys/ptrace.h>
        #include <sys/socket.h>
        #include <sys/syscall.h>
        #include <sys/wait.h>
        #include <unistd.h>

        static void report(const char *name, long rc) {
            if (rc < 0) printf("%s=errno %d\n", name, errno); else printf("%s=ok\n", name);
        }

        /* getpid (20) through the i386 entry point. */
        static long int80_getpid(void) {
            long rc;
            __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L) : "memory");
            return rc;
        }

        /* Kernels without IA-32 emulation answer int 0x80 with SIGSEGV; ask a child first. */
        static int int80_available(void) {
            pid_t pid = fork();
            if (pid == 0) _exit(int80_getpid() > 0 ? 0 : 1);
            int status = 0;
            return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }

        int main(int argc, char **argv) {
            static unsigned char bpf[4096 * 8];
            int fd = argc >= 2 ? open(argv[1], O_RDONLY) : -1;
            ssize_t size = fd < 0 ? -1 : read(fd, bpf, sizeof bpf);
            if (size <= 0 || size % 8 != 0) { printf("load=failed\n"); return 2; }
            close(fd);
            /* The test runner's thread blocks most signals and Process passes that on;
               a shell waiting for SIGCHLD would then hang. The sandbox shim resets it too. */
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            int int80 = int80_available();

            struct sock_fprog prog = { .len = (unsigned short)(size / 8), .filter = (struct sock_filter *)bpf };
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
                printf("install=errno %d\n", errno);
                return 2;
            }
            /* With a command after the filter path, run it confined instead of probing. */
            if (argc > 2) {
                execvp(argv[2], argv + 2);
                printf("exec=errno %d\n", errno);
                return 127;
            }
            printf("install=ok\n");
            report("getpid", getpid());
            report("socket_inet", socket(AF_INET, SOCK_STREAM, 0));
            report("socket_unix", socket(AF_UNIX, SOCK_STREAM, 0));
            report("socket_alg", socket(38, SOCK_SEQPACKET, 0));
            report("socket_vsock", socket(40, SOCK_STREAM, 0));
            /* The kernel truncates the family to int; the filter must not be fooled. */
            report("socket_vsock_wide", syscall(SYS_socket, (1L << 32) | 40, SOCK_STREAM, 0));
            /* As root on the host these all succeed without the filter (or fail with
               EAFNOSUPPORT / EPROTONOSUPPORT after the kernel tried to load a module). */
            report("socket_packet", socket(17 /* AF_PACKET */, SOCK_DGRAM, 0));
            report("socket_inet_sock_packet", socket(AF_INET, 10 /* SOCK_PACKET */, 0));
            report("socket_appletalk", socket(5 /* AF_APPLETALK */, SOCK_DGRAM, 0));
            report("socket_inet_sctp", socket(AF_INET, SOCK_STREAM, 132 /* IPPROTO_SCTP */));
            report("socket_inet_raw", socket(AF_INET, SOCK_RAW, 1 /* IPPROTO_ICMP */));
            report("socket_netlink_crypto", socket(16 /* AF_NETLINK */, SOCK_RAW, 21 /* NETLINK_CRYPTO */));
            report("socket_netlink_sock_diag", socket(16, SOCK_RAW, 4 /* NETLINK_SOCK_DIAG */));
            /* Wide values the kernel reads as an allowed family or protocol are refused too. */
            report("socket_inet_wide", syscall(SYS_socket, (1L << 32) | AF_INET, SOCK_STREAM, 0));
            report("socket_inet_protocol_wide", syscall(SYS_socket, AF_INET, SOCK_STREAM, (1L << 32) | 6));
            int pair[2];
            report("socketpair_inet", socketpair(AF_INET, SOCK_STREAM, 0, pair));
            report("socketpair_unix", socketpair(AF_UNIX, SOCK_STREAM, 0, pair));
            report("socket_inet6_udp", socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 17));
            report("socket_inet_tcp_nonblock", socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 6));
            report("socket_netlink_route", socket(16, SOCK_RAW | SOCK_CLOEXEC, 0 /* NETLINK_ROUTE */));
            char ldt[16];
            report("modify_ldt", syscall(SYS_modify_ldt, 0, ldt, sizeof ldt));
            report("memfd_secret", syscall(447 /* SYS_memfd_secret */, 0));
            report("unshare_user", unshare(CLONE_NEWUSER));
            report("clone3", syscall(SYS_clone3, NULL, 0));
            report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
            report("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
            report("mount", mount("none", "/nonexistent", "tmpfs", 0, NULL));
            pid_t child = fork();
            if (child == 0) _exit(0);
            report("fork", child < 0 ? -1 : waitpid(child, NULL, 0));
            long clone_ns = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
            if (clone_ns == 0) _exit(0);
            if (clone_ns > 0) waitpid((pid_t)clone_ns, NULL, 0);
            report("clone_newns", clone_ns);
            if (int80) printf("int80_getpid=%ld\n", int80_getpid()); else printf("int80_getpid=unavailable\n");
            report("x32_getpid", syscall(0x40000000 | SYS_getpid));
            return 0;
        }
        """#

    static var compilerAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") }

    @Test(.enabled(if: compilerAvailable, "needs /usr/bin/cc to build the probe"))
    func defaultProfileHoldsOnTheRealKernel() throws {
        let directory = try SeccompTemporaryDirectory()
        let probe = try Self.buildProbe(in: directory)
        let result = try Self.run(probe.executable, [probe.filter])
        try #require(result.status == 0, "probe failed: \(result.output)")

        var seen: [String: String] = [:]
        for line in result.output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { seen[parts[0]] = parts[1] }
        }
        let expected: [String: String] = [
            "install": "ok",
            "getpid": "ok",
            "socket_inet": "ok",
            "socket_unix": "ok",
            "socket_alg": "errno \(EPERM)",
            "socket_vsock": "errno \(EPERM)",
            "socket_vsock_wide": "errno \(EPERM)",
            "socket_packet": "errno \(EPERM)",
            "socket_inet_sock_packet": "errno \(EPERM)",
            "socket_appletalk": "errno \(EPERM)",
            "socket_inet_sctp": "errno \(EPERM)",
            "socket_inet_raw": "errno \(EPERM)",
            "socket_netlink_crypto": "errno \(EPERM)",
            "socket_netlink_sock_diag": "errno \(EPERM)",
            "socket_inet_wide": "errno \(EPERM)",
            "socket_inet_protocol_wide": "errno \(EPERM)",
            "socketpair_inet": "errno \(EPERM)",
            "socketpair_unix": "ok",
            "socket_inet6_udp": "ok",
            "socket_inet_tcp_nonblock": "ok",
            "socket_netlink_route": "ok",
            "modify_ldt": "errno \(EPERM)",
            "memfd_secret": "errno \(ENOSYS)",
            "unshare_user": "errno \(EPERM)",
            "clone3": "errno \(ENOSYS)",
            "keyctl": "errno \(EPERM)",
            "ptrace": "errno \(EPERM)",
            "mount": "errno \(EPERM)",
            "fork": "ok",
            "clone_newns": "errno \(EPERM)",
            "x32_getpid": "errno \(EPERM)",
        ]
        for (name, value) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(seen[name] == value, "\(name)\n\(result.output)")
        }
        // i386 entry points hit the bad-architecture action: -EPERM in eax.
        if seen["int80_getpid"] != "unavailable" {
            #expect(seen["int80_getpid"] == "-\(EPERM)", "\(result.output)")
        }
    }

    /// The allowlist must not be too tight: pipes, subshells, fork/exec and waiting
    /// are what every build script does.
    @Test(.enabled(if: compilerAvailable, "needs /usr/bin/cc to build the probe"))
    func ordinaryProgramsRunUnderTheDefaultProfile() throws {
        let directory = try SeccompTemporaryDirectory()
        let probe = try Self.buildProbe(in: directory)
        let script = #"x=$(echo 6 | cat); (sleep 0; echo $((x * 7))) | cat & wait; ls / >/dev/null && date >/dev/null && echo done"#
        let result = try Self.run(probe.executable, [probe.filter, "/bin/sh", "-c", script])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output == "42\ndone\n")
    }

    /// Compiles the default profile and the probe into `directory`.
    static func buildProbe(in directory: SeccompTemporaryDirectory) throws -> (executable: String, filter: String) {
        let compiled = try SeccompCompiler.load(path: SeccompProfileTests.defaultProfilePath)
        let filter = directory.path + "/filter.bpf"
        try compiled.filter.instructions.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: filter))
        let source = try directory.write("probe.c", probeSource)
        let executable = directory.path + "/probe"
        let build = try run("/usr/bin/cc", ["-O1", "-o", executable, source])
        try #require(build.status == 0, "cc failed: \(build.output)")
        return (executable, filter)
    }

    /// Runs a program with output to a file, so a hung child fails the test after
    /// `timeout` instead of hanging it.
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, output: String) {
        let directory = try SeccompTemporaryDirectory()
        let outputPath = try directory.write("output", "")
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline {
            usleep(10_000)
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            Issue.record("\(executable) did not finish within \(timeout) s")
        }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, text)
    }
}
