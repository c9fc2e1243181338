import Foundation
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// A task that keeps stdout and stderr full must still end at its timeout
/// (issue 9): the supervisor checks its deadline on every pass and reads a
/// bounded amount per wake-up, so no pipe traffic can keep it from the kill.
@Suite(.system, .serialized) struct OutputFloodTests {
    /// How the probe's writers fill the pipes (Tests/probes/flood.c).
    enum Flood: String, CaseIterable {
        case write, vmsplice, splicefile, splicepipe, mixed
    }

    /// Writers per run, half on stdout, half on stderr: more than the cores,
    /// so the pipes stay full while the supervisor runs.
    static let writers = 16
    /// The probe stops by itself after this long, so a supervisor that misses
    /// its deadline shows as a late, untimed-out run rather than a hung test.
    static let floodSeconds = 8

    /// Runs `spec`, timed from before `run` to after it.
    private func timed(_ spec: SandboxSpec) throws -> (outcome: Outcome, wall: Duration) {
        let started = ContinuousClock.now
        let outcome = try Fixture.runner.run(spec)
        return (outcome, ContinuousClock.now - started)
    }

    @Test(arguments: Flood.allCases, [nil, 0.5] as [Double?])
    func floodOnBothStreamsEndsAtTheTimeout(how: Flood, cpus: Double?) throws {
        var spec = try Fixture.shell("/probes/flood \(how.rawValue) \(Self.writers) \(Self.floodSeconds)")
        spec.timeoutSeconds = 2
        if let cpus { spec.limits.cpus = try CPUQuota(cpus: cpus) }
        let (o, wall) = try timed(spec)
        let limit = cpus.map { "cpus \($0)" } ?? "no CPU limit"
        #expect(o.timedOut, "\(how), \(limit): ran \(wall), exit \(o.exitCode)")
        #expect(o.exitCode == 124)
        #expect(wall < .seconds(3), "\(how), \(limit): killed after \(wall), timeout 2 s")
        // Both streams were flooded, capped at the limit and still counted.
        for (name, stream) in [("stdout", o.stdout), ("stderr", o.stderr)] {
            #expect(stream.bytes.count == spec.outputLimit, "\(name) kept \(stream.bytes.count) bytes")
            #expect(stream.truncated, "\(name): \(stream.totalBytes) bytes in all")
        }
        let left = try Shell.run(["pgrep", "-f", "/probes/flood"])
        #expect(left.stdout.isEmpty, "left behind: \(left.stdout)")
    }

    /// The OOM watch is on the same clock: a flood beside a memory hog must not
    /// keep the supervisor from seeing the OOM kill and ending the whole tree.
    @Test func floodDoesNotHideAnOOMKill() throws {
        var spec = try Fixture.shell("/probes/flood vmsplice \(Self.writers) \(Self.floodSeconds) & /probes/memhog 512; wait")
        spec.timeoutSeconds = 30
        spec.limits.memoryBytes = 64 << 20
        let (o, wall) = try timed(spec)
        let (oomKilled, timedOut) = (o.oomKilled, o.timedOut)
        #expect(oomKilled)
        #expect(!timedOut)
        #expect(wall < .seconds(3), "the tree ended \(wall) after start")
        let left = try Shell.run(["pgrep", "-f", "/probes/flood"])
        #expect(left.stdout.isEmpty, "left behind: \(left.stdout)")
    }

    /// Not even a flood: one line every 50 ms used to keep every poll busy, so
    /// the OOM state, read only after a quiet 100 ms, was never read and the
    /// rest of the tree ran on to its timeout.
    @Test func aTrickleOfOutputDoesNotHideAnOOMKill() throws {
        var spec = try Fixture.shell("(while :; do echo tick; sleep 0.05; done) & /probes/memhog 512; wait")
        spec.timeoutSeconds = 10
        spec.limits.memoryBytes = 64 << 20
        let (o, wall) = try timed(spec)
        let (oomKilled, timedOut) = (o.oomKilled, o.timedOut)
        #expect(oomKilled)
        #expect(!timedOut, "the ticker outlived the OOM kill until the timeout (\(o.durationMs) ms)")
        #expect(wall < .seconds(3), "the tree ended \(wall) after start")
        #expect(o.stdout.text.hasPrefix("tick\n"))
    }

    /// Past the limit the supervisor discards rather than keeps; with no room
    /// at all it still counts every byte of a run that ends by itself.
    @Test func outputPastAZeroLimitIsCountedNotKept() throws {
        var spec = try Fixture.shell("head -c 50000000 /dev/zero; head -c 3000000 /dev/zero >&2")
        spec.outputLimit = 0
        let o = try Fixture.runner.run(spec)
        #expect(o.exitCode == 0)
        #expect(o.stdout.bytes.isEmpty && o.stdout.totalBytes == 50_000_000)
        #expect(o.stderr.bytes.isEmpty && o.stderr.totalBytes == 3_000_000)
    }
}
