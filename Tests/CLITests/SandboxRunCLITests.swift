import Foundation
import Testing
import TestSupport

/// `dgrid sandbox run`'s contract (docs/ARCHITECTURE.md §8): exit codes, one-line errors, --json.
@Suite(.system, .serialized) struct SandboxRunCLITests {
    private func sandbox(_ args: [String], command: [String]) throws -> CLI.Result {
        try CLI.run(["sandbox", "run", "--rootfs", try CLI.rootfs()] + args + ["--"] + command)
    }

    @Test func passesOutputThroughAndExitsWithTheTasksCode() throws {
        let r = try sandbox([], command: ["sh", "-c", "echo out; echo err >&2; exit 7"])
        #expect(r.status == 7)
        #expect(r.stdout == "out\n")
        #expect(r.stderr == "err\n")
    }

    @Test func signalDeathExits128PlusN() throws {
        let r = try sandbox([], command: ["sh", "-c", "kill -KILL $$"])
        #expect(r.status == 137)
    }

    @Test func timeoutExits124() throws {
        let r = try sandbox(["--timeout", "0.5"], command: ["sleep", "30"])
        #expect(r.status == 124)
        #expect(r.stderr.contains("timed out"))
    }

    @Test func jsonPrintsTheOutcomeRecord() throws {
        let r = try sandbox(["--json", "--output-limit", "4"], command: ["sh", "-c", "echo hello; exit 3"])
        #expect(r.status == 3)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["exit_code"] as? Int == 3)
        #expect(object["stdout"] as? String == "hell")
        #expect(object["stdout_bytes"] as? Int == 6)
        #expect(object["stdout_truncated"] as? Bool == true)
        #expect(object["timed_out"] as? Bool == false)
        #expect(object["oom_killed"] as? Bool == false)
        for key in ["duration_ms", "cpu_ms", "max_rss_bytes", "signal", "stderr"] {
            #expect(object.keys.contains(key), "missing \(key)")
        }
    }

    /// Bad input: exit 125, exactly one line on stderr naming the problem.
    @Test(arguments: [
        (["--memory", "lots"], ["true"], "lots"),
        (["--cpus", "zero"], ["true"], "zero"),
        (["--pids=-3"], ["true"], "-3"),
        (["--pids", "-3"], ["true"], "--pids"),
        (["--user", "root"], ["true"], "root"),
        (["--timeout", "soon"], ["true"], "soon"),
        (["--seccomp", "/nonexistent/profile.json"], ["true"], "/nonexistent/profile.json"),
        ([], ["no-such-command"], "no-such-command"),
        (["--workdir", "relative"], ["true"], "relative"),
    ])
    func badInputExits125WithOneLine(args: [String], command: [String], mention: String) throws {
        let r = try sandbox(args, command: command)
        #expect(r.status == 125)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains(mention), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func missingRootfsExits125() throws {
        let r = try CLI.run(["sandbox", "run", "--rootfs", "/nonexistent/rootfs", "--", "true"])
        #expect(r.status == 125)
        #expect(r.stderr == "dgrid: rootfs /nonexistent/rootfs: does not exist\n")
    }

    @Test func unparsableProfileExits125() throws {
        let path = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-bad-profile-\(UUID().uuidString.prefix(8)).json")
        try "{ \"defaultAction\": ".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try sandbox(["--seccomp", path], command: ["true"])
        #expect(r.status == 125)
        #expect(r.stderr.contains(path))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func unconfinedSeccompIsAnExplicitChoice() throws {
        let confined = try sandbox([], command: ["grep", "^Seccomp:", "/proc/self/status"])
        let unconfined = try sandbox(["--seccomp", "unconfined"], command: ["grep", "^Seccomp:", "/proc/self/status"])
        #expect(confined.stdout.hasSuffix("2\n"))
        #expect(unconfined.stdout.hasSuffix("0\n"))
    }
}
