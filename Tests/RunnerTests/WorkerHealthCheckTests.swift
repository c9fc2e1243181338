import Foundation
import Sandbox
import Testing
@testable import Runner
import TestSupport

/// The Git circuit breaker and the periodic self-checks (docs/ARCHITECTURE.md §12, "Health").
@Suite(.unit) struct WorkerHealthCheckTests {
    @Test func theCircuitOpensAfterConsecutiveFailuresAndProbesWithGrowingBackoff() {
        let breaker = GitCircuitBreaker(threshold: 3, baseSeconds: 10, ceilingSeconds: 25)
        let start = Date()
        #expect(breaker.refusal(now: start) == nil)
        #expect(!breaker.failed("connection refused", now: start))
        #expect(!breaker.failed("connection refused", now: start))
        // A success between failures starts the count again.
        breaker.succeeded()
        #expect(!breaker.failed("x", now: start) && !breaker.failed("x", now: start))
        #expect(breaker.failed("connection refused", now: start), "the third in a row opens it")
        #expect(breaker.snapshot().state == .open)
        let refused = breaker.refusal(now: start.addingTimeInterval(1))
        #expect(refused?.contains("circuit to the Git server is open after 3 consecutive failures") == true, "\(refused ?? "")")
        #expect(refused?.contains("connection refused") == true)
        // 10 s ± 20 %: still open at 7 s, a probe by 12.5 s.
        #expect(breaker.refusal(now: start.addingTimeInterval(7)) != nil)
        #expect(breaker.refusal(now: start.addingTimeInterval(12.5)) == nil, "the probe goes through")
        #expect(breaker.snapshot().state == .halfOpen)
        #expect(breaker.refusal(now: start.addingTimeInterval(12.6)) != nil, "one probe at a time")
        // The probe fails: open again, for twice as long (20 s ± 20 %), capped at 25 s.
        let second = start.addingTimeInterval(13)
        #expect(breaker.failed("timeout", now: second))
        #expect(breaker.refusal(now: second.addingTimeInterval(15)) != nil)
        #expect(breaker.refusal(now: second.addingTimeInterval(24.5)) == nil)
        #expect(breaker.failed("timeout", now: second.addingTimeInterval(25)))
        #expect(breaker.refusal(now: second.addingTimeInterval(25 + 30.1)) == nil, "capped: 25 s + 20 % at most")
        breaker.succeeded()
        let closed = breaker.snapshot()
        #expect(closed.state == .closed && closed.consecutiveFailures == 0 && closed.opened == 3, "\(closed)")
    }

    @Test func aLedgerWithAnOpenCircuitFailsAtOnceWithoutConnecting() throws {
        // A closed port on loopback: every fetch is a network failure.
        let port = try FreePort.loopback()
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try GitLedger(remote: "git://127.0.0.1:\(port)/grid.git", mirrorPath: directory + "/mirror")
        ledger.circuit = GitCircuitBreaker(threshold: 2, baseSeconds: 60)
        for _ in 0..<2 {
            #expect(throws: LedgerError.self) { try ledger.remoteRefs() }
        }
        #expect(ledger.circuit?.snapshot().state == .open)
        let started = Date()
        do {
            _ = try ledger.remoteRefs()
            Issue.record("an open circuit let a listing through")
        } catch {
            #expect(error.kind == .network)
            #expect(error.message.contains("circuit to the Git server is open"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 0.5)
    }

    @Test func aFullDiskAndLowMemoryFailTheirChecksWithTheFloorNamed() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var settings = GridSettings(repository: "file:///nonexistent", nodeID: "n1", state: StateDirectory(path: directory))
        settings.minimumFreeDisk = ByteCount(bytes: 1 << 50)
        let check = WorkerSelfCheck(settings: settings, runner: SandboxRunner(cgroups: nil))
        let disk = check.space()
        #expect(disk?.kind == .disk && disk?.published.hasPrefix("disk almost full") == true, "\(String(describing: disk))")
        #expect(disk?.published.contains(directory) == false, "the published reason names no host path")
        settings.minimumFreeDisk = ByteCount(bytes: 0)
        settings.minimumFreeInodes = UInt64.max
        #expect(WorkerSelfCheck(settings: settings, runner: SandboxRunner(cgroups: nil)).space()?.kind == .inodes)
        settings.minimumFreeInodes = 0
        #expect(WorkerSelfCheck(settings: settings, runner: SandboxRunner(cgroups: nil)).space() == nil)

        let meminfo = directory + "/meminfo"
        try "MemTotal:       24000000 kB\nMemFree:          100 kB\nMemAvailable:      32768 kB\n".write(toFile: meminfo, atomically: true, encoding: .utf8)
        #expect(WorkerSelfCheck.memAvailable(meminfo) == 32 << 20)
        var low = WorkerSelfCheck(settings: settings, runner: SandboxRunner(cgroups: nil))
        low.meminfoPath = meminfo
        #expect(low.memory()?.kind == .memory)
        settings.minimumAvailableMemory = ByteCount(bytes: 16 << 20)
        low = WorkerSelfCheck(settings: settings, runner: SandboxRunner(cgroups: nil))
        low.meminfoPath = meminfo
        #expect(low.memory() == nil)
        try "MemTotal: 1 kB\n".write(toFile: meminfo, atomically: true, encoding: .utf8)
        #expect(WorkerSelfCheck.memAvailable(meminfo) == nil, "no MemAvailable line: not judged")
    }

    @Test func aCheapFaultIsRecheckedAtAFixedPaceNotWithGrowingBackoff() {
        let health = WorkerHealth(baseSeconds: 5, ceilingSeconds: 300)
        let start = Date()
        health.fault(reason: "disk almost full", check: .periodic, now: start, recheckEvery: 1)
        #expect(health.dueCheck(now: start.addingTimeInterval(0.5)) == nil)
        #expect(health.dueCheck(now: start.addingTimeInterval(1)) == .periodic)
        health.failed(reason: "disk almost full", now: start.addingTimeInterval(1))
        #expect(health.dueCheck(now: start.addingTimeInterval(2)) == .periodic, "still every second")
        health.passed()
        #expect(health.isHealthy)
    }
}
