import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// Limits hold on the whole process tree and are reported.
@Suite(.system, .serialized) struct LimitsTests {
    private func run(_ script: String, _ adjust: (inout SandboxSpec) -> Void = { _ in }) throws -> Outcome {
        var spec = try Fixture.shell(script)
        adjust(&spec)
        return try Fixture.runner.run(spec)
    }

    @Test func forkBombIsStoppedByThePidsLimit() throws {
        let o = try run("i=0; while [ $i -lt 300 ]; do sleep 30 & i=$((i+1)); done; echo spawned") {
            $0.limits.pids = 32
            $0.timeoutSeconds = 20
        }
        #expect(o.pidsLimitHit)
        #expect(o.stderr.text.contains("can't fork") || o.stderr.text.contains("Resource temporarily unavailable"))
        #expect(!o.timedOut, "the run must end once the shell gives up, not at the timeout")
    }

    @Test func memoryHogIsOOMKilledAndReported() throws {
        let o = try run("/probes/memhog 512") {
            $0.limits.memoryBytes = 64 << 20
        }
        #expect(o.oomKilled)
        #expect(o.exitCode == 137)
        #expect(o.signal == SIGKILL)
        #expect(!o.stdout.text.contains("done"))
        #expect((o.maxRssBytes ?? 0) <= 64 << 20 + 4096)
    }

    @Test func cpuHogIsHeldToItsQuota() throws {
        let o = try run("/probes/cpuburn 2 3") { $0.limits.cpus = try? CPUQuota(cpus: 0.5) }
        let cpu = Double(try #require(o.cpuMs))
        let ratio = cpu / Double(o.durationMs)
        #expect(o.exitCode == 0)
        // Two threads would use ~2.0 CPUs unlimited; the quota holds them near 0.5.
        #expect(ratio < 0.7, "cpu \(cpu) ms over \(o.durationMs) ms wall = \(ratio)")
        #expect(ratio > 0.3)
    }

    @Test func timeoutKillsTheWholeTree() throws {
        let marker = "dgrid-timeout-\(UInt32.random(in: 0...UInt32.max))"
        // Each shell carries the marker as its $0, so it shows in /proc/*/cmdline.
        let sleeper = "sh -c 'sleep 1000; true' \(marker)"
        let script = """
        (setsid \(sleeper) &) ; (\(sleeper) &) ;
        \(sleeper) & kill -STOP $! ;
        trap '' TERM ; \(sleeper)
        """
        let o = try run(script) { $0.timeoutSeconds = 1 }
        #expect(o.timedOut)
        #expect(o.exitCode == 124)
        #expect(o.durationMs < 10_000)
        let left = try Shell.run(["pgrep", "-f", marker])
        #expect(left.stdout.isEmpty, "processes left behind: \(left.stdout)")
    }

    @Test func timeoutKillsPtraceStoppedProcesses() throws {
        let o = try run("/probes/ptracer") {
            $0.seccomp = nil  // ptrace is refused by the default profile
            $0.timeoutSeconds = 1
        }
        #expect(o.stdout.text == "traced\n")
        #expect(o.timedOut)
        #expect(o.exitCode == 124)
        let left = try Shell.run(["pgrep", "-f", "/probes/ptracer"])
        #expect(left.stdout.isEmpty, "left behind: \(left.stdout)")
    }

    @Test func aGigabyteOfOutputDoesNotGrowTheRunnersMemory() throws {
        var before = rusage()
        getrusage(RUSAGE_SELF.rawValue, &before)
        let o = try run("head -c 1000000000 /dev/zero") { $0.timeoutSeconds = 300 }
        var after = rusage()
        getrusage(RUSAGE_SELF.rawValue, &after)
        #expect(o.stdout.totalBytes == 1_000_000_000)
        #expect(o.stdout.bytes.count == 10 * 1024)
        // ru_maxrss is the high-water mark in KiB: it may not rise by more than noise.
        #expect(after.ru_maxrss - before.ru_maxrss < 16 * 1024, "grew by \(after.ru_maxrss - before.ru_maxrss) KiB")
    }

    @Test func orphansAreReapedByPid1() throws {
        let o = try run("for i in 1 2 3 4 5; do (sleep 0.1 &); done; sleep 1; ps -o stat,comm | grep -c '^Z' || true")
        #expect(o.stdout.text == "0\n")
    }

    @Test func taskExitingWhileAChildHoldsStdoutDoesNotHang() throws {
        let o = try run("sleep 1000 & echo bye") { $0.timeoutSeconds = 30 }
        #expect(o.stdout.text == "bye\n")
        #expect(!o.timedOut)
        #expect(o.durationMs < 10_000)
    }

    @Test func hugeStdoutIsCappedAndCounted() throws {
        let o = try run("head -c 100000000 /dev/zero; echo err >&2") { $0.timeoutSeconds = 120 }
        #expect(o.stdout.totalBytes == 100_000_000)
        #expect(o.stdout.bytes.count == 10 * 1024)
        #expect(o.stdout.truncated)
        #expect(o.stderr.text == "err\n")
        #expect(!o.stderr.truncated)
        #expect(!o.timedOut)
    }

    @Test func exitCodesAndSignalsAreReported() throws {
        #expect(try run("exit 7").exitCode == 7)
        let killed = try run("kill -TERM $$")
        #expect(killed.exitCode == 128 + SIGTERM)
        #expect(killed.signal == SIGTERM)
    }

    @Test func nothingIsLeftInTheCgroupHierarchy() throws {
        _ = try run("sleep 100 &") { $0.limits.pids = 16 }
        _ = try run("sleep 100") { $0.timeoutSeconds = 0.3; $0.limits.memoryBytes = 32 << 20 }
        // Other dgrid processes may share the hierarchy: look for this process's groups only.
        let leftovers = try Shell.run(["find", "/sys/fs/cgroup", "-maxdepth", "5", "-type", "d",
                                       "-path", "*/dgrid/\(getpid())-*"])
        #expect(leftovers.stdout.isEmpty, "left behind: \(leftovers.stdout)")
    }
}
