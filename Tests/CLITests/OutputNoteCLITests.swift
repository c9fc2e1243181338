import Foundation
import Testing
import TestSupport

/// dgrid's notes after a task's output ("stdout truncated", a result's
/// status line) start on a line of their own, even when the task's last line
/// has no newline.
@Suite(.system) struct OutputNoteCLITests {
    /// `dgrid ARGS 2>&1`: stdout and stderr one file, as on a terminal.
    static func merged(_ arguments: [String], home: String? = nil) throws -> ProcessResult {
        try ProcessRunner.run("/bin/sh", ["-c", "\"$0\" \"$@\" 2>&1", CLI.binary] + arguments,
                              environment: home.map { ["DGRID_HOME": $0] } ?? [:])
    }

    @Test func truncationNoteStartsItsOwnLineAfterOutputWithoutANewline() throws {
        let run = try Self.merged(["sandbox", "run", "--rootfs", try CLI.rootfs(), "--output-limit", "4", "--",
                                   "sh", "-c", "printf abcdefgh"])
        #expect(run.status == 0, "\(run.stdout)")
        #expect(run.stdout == "abcd\ndgrid: stdout truncated: kept 4 of 8 bytes\n", "\(run.stdout.debugDescription)")
    }

    /// Separate files: only stderr's own last line matters, and stdout gets nothing added.
    @Test func onSeparateStreamsTheNoteFollowsStderrsLastLine() throws {
        let rootfs = try CLI.rootfs()
        let unterminated = try CLI.run(["sandbox", "run", "--rootfs", rootfs, "--output-limit", "4", "--",
                                        "sh", "-c", "printf abcdefgh; printf oops >&2"])
        #expect(unterminated.stdout == "abcd")
        #expect(unterminated.stderr == "oops\ndgrid: stdout truncated: kept 4 of 8 bytes\n", "\(unterminated.stderr.debugDescription)")
        let quiet = try CLI.run(["sandbox", "run", "--rootfs", rootfs, "--output-limit", "4", "--", "sh", "-c", "printf abcdefgh"])
        #expect(quiet.stderr == "dgrid: stdout truncated: kept 4 of 8 bytes\n", "\(quiet.stderr.debugDescription)")
        let whole = try CLI.run(["sandbox", "run", "--rootfs", rootfs, "--output-limit", "4", "--", "sh", "-c", "printf 'abcdefg\\n' >&2"])
        #expect(whole.stderr == "abcd\ndgrid: stderr truncated: kept 4 of 8 bytes\n", "\(whole.stderr.debugDescription)")
    }

    @Test func resultsStatusLineStartsItsOwnLine() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let home = try GridFixture.workerHome()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let tasks = try TempDir.make(prefix: "dgrid-note-tasks").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try GridFixture.taskFile(tasks, "bare", "printf 'no newline'")
        #expect(try home.dgrid("init", "--repo", repo).status == 0)
        #expect(try home.dgrid("submit", "--repo", repo, tasks).status == 0)
        let worker = try home.dgrid("worker", "--repo", repo, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let result = try Self.merged(["result", "--repo", repo, "bare"], home: home.path)
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.hasPrefix("no newline\ndgrid: bare: completed"), "\(result.stdout.debugDescription)")
    }
}
