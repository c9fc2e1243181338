import Foundation
import Glibc
import Testing
import TestSupport

/// `dgrid` itself killed with SIGKILL mid-run: the sandbox dies with it, and
/// the next start removes the cgroup the dead run left behind.
@Suite(.system, .serialized) struct CrashCleanupCLITests {
    private func groups(ownedBy pid: Int32) throws -> [String] {
        let find = Process()
        find.executableURL = URL(fileURLWithPath: "/usr/bin/find")
        find.arguments = ["/sys/fs/cgroup", "-maxdepth", "5", "-type", "d", "-path", "*/dgrid/\(pid)-*"]
        let out = Pipe()
        find.standardOutput = out
        find.standardError = FileHandle.nullDevice
        try find.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        find.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    private func processes(matching marker: String) -> Bool {
        let pgrep = Process()
        pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        pgrep.arguments = ["-f", marker]
        pgrep.standardOutput = FileHandle.nullDevice
        try? pgrep.run()
        pgrep.waitUntilExit()
        return pgrep.terminationStatus == 0
    }

    @Test func sigkilledDgridLeavesNothingRunningAndTheNextStartCleansUp() throws {
        let marker = "dgrid-crash-\(UInt32.random(in: 0...UInt32.max))"
        let dgrid = Process()
        dgrid.executableURL = URL(fileURLWithPath: CLI.binary)
        dgrid.arguments = ["sandbox", "run", "--rootfs", try CLI.rootfs(), "--memory", "64m", "--pids", "32", "--",
                           "sh", "-c", "sleep 1000; true", marker]
        dgrid.standardOutput = FileHandle.nullDevice
        dgrid.standardError = FileHandle.nullDevice
        try dgrid.run()
        let pid = dgrid.processIdentifier

        var started = false
        for _ in 0..<100 where !started {
            usleep(50_000)
            started = processes(matching: marker)
        }
        #expect(started, "the sandboxed task never started")
        #expect(try !groups(ownedBy: pid).isEmpty, "the run should have a cgroup while it runs")

        kill(pid, SIGKILL)
        dgrid.waitUntilExit()
        var gone = false
        for _ in 0..<100 where !gone {
            usleep(20_000)
            gone = !processes(matching: marker)
        }
        #expect(gone, "the task outlived the dgrid that ran it")

        let next = try CLI.run(["sandbox", "run", "--rootfs", try CLI.rootfs(), "--", "true"])
        #expect(next.status == 0)
        #expect(try groups(ownedBy: pid).isEmpty, "the next start should remove the dead run's cgroup")
    }
}
