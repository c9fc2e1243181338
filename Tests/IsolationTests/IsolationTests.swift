import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// Each property proven from inside the sandbox, by what the task itself sees.
@Suite(.system, .serialized) struct IsolationTests {
    private func run(_ script: String, _ adjust: (inout SandboxSpec) -> Void = { _ in }) throws -> Outcome {
        var spec = try Fixture.shell(script)
        adjust(&spec)
        return try Fixture.runner.run(spec)
    }

    @Test func hostProcessesAreInvisible() throws {
        let o = try run("ls -d /proc/[0-9]* | sed 's,/proc/,,'")
        let pids = o.stdout.text.split(separator: "\n").compactMap { Int($0) }
        #expect(o.exitCode == 0)
        #expect(pids.contains(1))
        #expect(!pids.contains(Int(getpid())))
        #expect(pids.allSatisfy { $0 < 20 }, "only the sandbox's own few processes: \(pids)")
    }

    @Test func onlyLoopbackNetworking() throws {
        let o = try run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
        #expect(o.stdout.text.split(separator: "\n") == ["lo"])
    }

    @Test func hostnameIsTheSandboxes() throws {
        let o = try run("hostname") { $0.hostname = "probe-host" }
        #expect(o.stdout.text == "probe-host\n")
    }

    @Test func noCapabilitiesNoNewPrivsSeccompFiltering() throws {
        let o = try run("grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status")
        let fields = Dictionary(uniqueKeysWithValues: o.stdout.text.split(separator: "\n").map { line in
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            return (parts[0], parts[1])
        })
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            #expect(fields[set] == "0000000000000000", "\(set) must be empty")
        }
        #expect(fields["NoNewPrivs"] == "1")
        #expect(fields["Seccomp"] == "2")
    }

    @Test func rootInsideStillHasNoCapabilities() throws {
        let o = try run("id -u; grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status") { $0.user = UserID(uid: 0, gid: 0) }
        let lines = o.stdout.text.split(separator: "\n")
        #expect(lines.first == "0")
        #expect(lines.count == 4)
        #expect(lines.dropFirst().allSatisfy { $0.hasSuffix("\t0000000000000000") }, "\(lines)")
    }

    @Test func defaultUserIsUnprivilegedWithNoExtraGroups() throws {
        let o = try run("id -u; id -g; cat /proc/self/status | grep ^Groups")
        let lines = o.stdout.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "1000")
        #expect(lines[1] == "1000")
        #expect(lines[2].trimmingCharacters(in: .whitespaces) == "Groups:")
    }

    @Test(arguments: ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts", "/proc/sched_debug"])
    func maskedPathsReadEmpty(path: String) throws {
        let o = try run("if [ -e \(path) ]; then wc -c < \(path); else echo absent; fi")
        #expect(o.stdout.text == "0\n" || o.stdout.text == "absent\n", "\(path): \(o.stdout.text)")
    }

    @Test func maskedDirectoriesAreEmpty() throws {
        let o = try run("ls -A /sys/firmware /proc/acpi 2>/dev/null | grep -v ':$' | grep -c . || true")
        #expect(o.stdout.text == "0\n")
    }

    @Test(arguments: ["/proc/sys/kernel/domainname", "/proc/sysrq-trigger", "/proc/sys/vm/drop_caches"])
    func procPathsAreReadOnly(path: String) throws {
        let o = try run("echo 1 > \(path) && echo WROTE || echo refused") { $0.user = UserID(uid: 0, gid: 0) }
        #expect(o.stdout.text == "refused\n")
    }

    @Test func sysIsReadOnly() throws {
        let o = try run("touch /sys/x 2>&1; echo 1 > /sys/kernel/mm/transparent_hugepage/enabled 2>&1 || echo refused") {
            $0.user = UserID(uid: 0, gid: 0)
        }
        #expect(o.stdout.text.contains("Read-only file system"))
        #expect(o.stdout.text.hasSuffix("refused\n"))
    }

    @Test func onlyStandardDescriptorsReachTheTaskEvenWhenTheCallerLeaks() throws {
        // A directory fd without O_CLOEXEC: the CVE-2024-21626 shape.
        let leaked = open("/", O_RDONLY | O_DIRECTORY)
        let leakedFile = open("/etc/hostname", O_RDONLY)
        defer { close(leaked); close(leakedFile) }
        #expect(leaked > 2)
        let o = try run("/probes/fds")
        #expect(o.stdout.text == "0\n1\n2\n")
    }

    @Test func stdinIsDevNull() throws {
        let o = try run("readlink /proc/self/fd/0; wc -c")
        #expect(o.stdout.text == "/dev/null\n0\n")
    }

    @Test func devHoldsOnlyTheBasicDevices() throws {
        let o = try run("ls -A /dev | tr '\\n' ' '")
        #expect(o.stdout.text == "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero ")
        let nodes = try run("find /dev -xdev -type c -o -xdev -type b | sort | tr '\\n' ' '")
        #expect(nodes.stdout.text == "/dev/full /dev/null /dev/random /dev/tty /dev/urandom /dev/zero ")
    }

    @Test func rootfsIsReadOnlyAndTmpIsWritable() throws {
        let o = try run("touch /probe 2>&1; echo x > /tmp/f && cat /tmp/f")
        #expect(o.stdout.text.contains("Read-only file system"))
        #expect(o.stdout.text.hasSuffix("x\n"))
    }

    @Test func writableRootfsOnRequest() throws {
        let copy = try Fixture.rootfsCopy()
        var spec = try Fixture.shell("echo hi > /written && cat /written")
        spec.root = .directory(copy)
        spec.writableRootfs = true
        spec.user = UserID(uid: 0, gid: 0)
        let o = try Fixture.runner.run(spec)
        #expect(o.stdout.text == "hi\n")
        #expect(FileManager.default.fileExists(atPath: copy + "/written"))
    }

    @Test func tmpHasASizeLimit() throws {
        let o = try run("dd if=/dev/zero of=/tmp/big bs=1M count=64 2>&1; echo size $(wc -c < /tmp/big)") {
            $0.tmpSize = ByteCount(bytes: 8 << 20)
        }
        #expect(o.stdout.text.contains("No space left on device"))
        #expect(o.stdout.text.hasSuffix("size 8388608\n"))
    }

    @Test func setuidBinariesDoNotElevate() throws {
        let copy = try Fixture.rootfsCopy()
        // Named busybox-* so busybox takes the applet from argv[1].
        try Shell.check(["cp", copy + "/bin/busybox", copy + "/bin/busybox-suid"])
        try Shell.check(["chmod", "4755", copy + "/bin/busybox-suid"])
        var spec = try Fixture.shell("/bin/busybox-suid id -u")
        spec.root = .directory(copy)
        let o = try Fixture.runner.run(spec)
        #expect(o.stdout.text == "1000\n")
    }

    @Test func hostMountTableIsUnchanged() throws {
        let before = try HostMounts.snapshot()
        _ = try run("true")
        _ = try run("sleep 10") { $0.timeoutSeconds = 0.5 }
        #expect(try HostMounts.snapshot() == before)
    }
}
