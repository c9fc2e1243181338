import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// The default profile as a task meets it: each refused call seen from inside.
@Suite(.system, .serialized) struct SeccompInSandboxTests {
    private static func probe() throws -> [String: Int32] {
        var spec = try Fixture.shell("/probes/syscalls")
        spec.command = ["/probes/syscalls"]
        spec.user = UserID(uid: 0, gid: 0)  // root inside: only seccomp and capabilities stand in the way
        let o = try Fixture.runner.run(spec)
        #expect(o.exitCode == 0, "probe failed: \(o.stderr.text)")
        var results: [String: Int32] = [:]
        for line in o.stdout.text.split(separator: "\n") {
            let kv = line.split(separator: "=")
            if kv.count == 2, let value = Int32(kv[1]) { results[String(kv[0])] = value }
        }
        return results
    }

    @Test(arguments: ["mount", "unshare_user", "unshare_ns", "keyctl", "add_key", "ptrace", "bpf",
                      "perf_event_open", "userfaultfd", "io_uring_setup", "process_vm_readv", "setns",
                      "pivot_root", "socket_alg", "socket_vsock", "int80_getpid", "chroot", "modify_ldt"])
    func refusedWithEPERM(call: String) throws {
        let results = try Self.probe()
        #expect(results[call] == EPERM, "\(call) gave \(results[call].map { String($0) } ?? "nothing")")
    }

    /// Socket families and protocols outside what a loopback-only task uses: each
    /// would make the host kernel load a module for it (AF_PACKET, AF_APPLETALK,
    /// Bluetooth, X.25, SCTP, DCCP, netlink crypto and sock_diag). The filter
    /// answers EPERM before the kernel looks the family up; without it these gave
    /// EAFNOSUPPORT, EPROTONOSUPPORT or a socket.
    @Test(arguments: ["socket_packet", "socket_appletalk", "socket_bluetooth", "socket_x25",
                      "socket_inet_sock_packet", "socket_inet_sctp", "socket_inet6_sctp", "socket_inet_dccp",
                      "socket_netlink_crypto", "socket_netlink_sock_diag", "socketpair_inet"])
    func rareSocketFamiliesAndProtocolsAreRefused(call: String) throws {
        let results = try Self.probe()
        #expect(results[call] == EPERM, "\(call) gave \(results[call].map { String($0) } ?? "nothing")")
    }

    @Test func clone3FallsBackWithENOSYS() throws {
        #expect(try Self.probe()["clone3"] == ENOSYS)
    }

    /// ENOSYS, as from a kernel without it, so a caller falls back rather than fails.
    @Test func memfdSecretIsUnavailable() throws {
        #expect(try Self.probe()["memfd_secret"] == ENOSYS)
    }

    @Test(arguments: ["getpid", "socket_inet", "socket_inet_tcp", "socket_inet_udp", "socket_inet6",
                      "socket_inet6_udp", "socket_unix", "socket_unix_dgram", "socket_netlink_route",
                      "socketpair_unix"])
    func ordinaryCallsWork(call: String) throws {
        let results = try Self.probe()
        #expect(results[call] == 0, "\(call) gave \(results[call].map { String($0) } ?? "nothing")")
    }

    @Test func threadsAndForkStillWork() throws {
        let o = try Fixture.runner.run(try Fixture.shell("/probes/cpuburn 2 0.1 && (true &) && wait && echo ok"))
        #expect(o.stdout.text == "ok\n")
    }

    @Test func unconfinedIsReallyUnconfined() throws {
        var spec = try Fixture.shell("grep ^Seccomp: /proc/self/status")
        spec.seccomp = nil
        #expect(try Fixture.runner.run(spec).stdout.text == "Seccomp:\t0\n")
    }
}
