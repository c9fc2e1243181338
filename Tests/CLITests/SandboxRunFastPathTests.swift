import ArgumentParser
import Testing
@testable import DGridCLI
import TestSupport

/// The fast path must never disagree with ArgumentParser: for every command
/// line it either declines (nil) or yields exactly what ArgumentParser parses.
@Suite(.unit) struct SandboxRunFastPathTests {
    /// Command lines after `dgrid sandbox run`, and whether the fast path must take them.
    static let cases: [(arguments: [String], fast: Bool)] = [
        (["--rootfs", "/r", "--", "/bin/true"], true),
        (["--rootfs=/r", "--memory=256m", "--pids", "128", "--", "/bin/sh", "-c", "echo hi"], true),
        (["--image", "busybox", "--env", "A=1", "--env", "B=2", "--json", "--", "env"], true),
        (["--rootfs", "/r", "--cpus", "1.5", "--timeout", "3", "--user", "0:0", "--workdir", "/tmp",
          "--writable-rootfs", "--seccomp", "unconfined", "--output-limit", "1k", "--tmp-size", "8m", "--writable-size", "32m",
          "--hostname", "box", "--no-cgroup-limits", "--", "/bin/true"], true),
        (["--rootfs", "/r", "--", "--", "x"], true),
        (["--rootfs", "/r", "--", "/bin/sh", "--help"], true),
        // Declined: ArgumentParser owns help, errors and unusual spellings.
        (["--help"], false),
        (["--rootfs", "/r"], false),
        (["--rootfs", "/r", "/bin/echo", "a", "--json"], false),
        (["-h"], false),
        (["--rootfs", "/r", "--memory", "-1", "--", "x"], false),
        (["--rootfs", "/r", "--memory", "1m", "--memory", "2m", "--", "x"], false),
        (["--rootfs", "/r", "--json=yes", "--", "x"], false),
        (["--rootfs", "/r", "--bogus", "1", "--", "x"], false),
        (["--rootfs", "/r", "--pids"], false),
        (["--rootfs", "", "--", "x"], false),
        (["--rootfs", "/r", "--json", "--json", "--", "x"], false),
    ]

    @Test(arguments: cases.indices)
    func agreesWithArgumentParser(_ index: Int) throws {
        let (arguments, fast) = Self.cases[index]
        let fastResult = SandboxRunFastPath.parse(["sandbox", "run"] + arguments)
        #expect((fastResult != nil) == fast, "fast path \(fast ? "must take" : "must decline") \(arguments)")
        guard let fastResult else { return }
        let parsed = try SandboxRun.parse(arguments)
        #expect(fastResult == parsed.options, "\(arguments)")
    }

    @Test func declinesOtherCommands() {
        #expect(SandboxRunFastPath.parse(["image", "list"]) == nil)
        #expect(SandboxRunFastPath.parse(["sandbox"]) == nil)
        #expect(SandboxRunFastPath.parse([]) == nil)
    }
}
