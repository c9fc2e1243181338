import Foundation
import Testing
import TestSupport

/// Operator control (issue 10) through the built binary: `worker --print-config`,
/// a bad config that stops the worker, and limits from `worker.toml` that a
/// real worker enforces.
@Suite(.system, .serialized) struct WorkerConfigCLITests {
    /// A state directory holding `worker.toml` with `toml`.
    static func home(_ toml: String) throws -> ImageCLITests.Home {
        let home = try ImageCLITests.Home()
        try Data(toml.utf8).write(to: URL(fileURLWithPath: home.path + "/worker.toml"))
        return home
    }

    /// Every source appears once: flag, `--set`, environment, the file in
    /// `$DGRID_HOME`, default; and no grid is needed to print.
    @Test func printConfigShowsEachValueAndWhereItCameFromThenExits() throws {
        let home = try Self.home("slots = 7\nmax_memory = \"2g\"\nmax_pids = 500\n")
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let file = home.path + "/worker.toml"
        let args = ["worker", "--print-config", "--slots", "2", "--set", "output_limit=64k"]
        let environment = ["DGRID_HOME": home.path, "DGRID_MAX_PIDS": "999"]

        let json = try CLI.run(args + ["--json"], environment: environment)
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["config_file"] as? String == file)
        let settings = try #require(object["settings"] as? [String: [String: Any]])
        func source(_ key: String) -> [String: String] { settings[key]?["source"] as? [String: String] ?? [:] }
        #expect(settings["slots"]?["value"] as? Int == 2 && source("slots") == ["kind": "flag", "flag": "--slots"])
        #expect(settings["output_limit"]?["value"] as? Int == 65536 && source("output_limit") == ["kind": "flag", "flag": "--set output_limit"])
        #expect(settings["max_pids"]?["value"] as? Int == 999 && source("max_pids") == ["kind": "env", "variable": "DGRID_MAX_PIDS"])
        #expect(settings["max_memory"]?["value"] as? Int == 2 << 30 && source("max_memory") == ["kind": "file", "path": file])
        #expect(settings["max_cpus"]?["value"] as? Int == 4 && source("max_cpus") == ["kind": "default"])

        let text = try CLI.run(args, environment: environment)
        #expect(text.status == 0, "\(text.stderr)")
        // Columns are as wide as the longest key and value: compare words, not spacing.
        #expect(text.stdout.split(separator: "\n").contains { $0.split(separator: " ") == ["max_memory", "2g", "#", "file", Substring(file)] },
                "\(text.stdout)")
        #expect(text.stdout.contains("# env DGRID_MAX_PIDS\n"))
    }

    /// The worker does not start: exit 78 (EX_CONFIG), the file and the key named.
    @Test(arguments: [
        ("max_memroy = \"1g\"\n", "worker config FILE: unknown key \"max_memroy\"; valid keys: node_id, slots,"),
        ("max_timeout_seconds = -5\n", "worker config FILE: max_timeout_seconds: -5 is out of range; expected a whole number in 1...31536000"),
        ("slots = 2\nmax_pids = = 3\n", "worker config FILE, line 2, column "),
    ])
    func aBadConfigStopsTheWorkerNamingFileAndKey(toml: String, message: String) throws {
        let home = try Self.home(toml)
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let run = try home.dgrid("worker", "--repo", "file:///nonexistent/grid.git", "--once")
        #expect(run.status == 78, "\(run.stdout) \(run.stderr)")
        let expected = message.replacingOccurrences(of: "FILE", with: home.path + "/worker.toml")
        #expect(run.stderr.hasPrefix("dgrid: " + expected), "\(run.stderr)")
    }

    @Test func jsonWithoutPrintConfigIsAUsageError() throws {
        let run = try CLI.run(["worker", "--repo", "file:///nonexistent/grid.git", "--json"])
        #expect(run.status == 64, "\(run.stderr)")
        #expect(run.stderr.contains("--json only applies to --print-config"), "\(run.stderr)")
    }

    @Test func aConfigFileNamedByFlagMustExist() throws {
        let run = try CLI.run(["worker", "--print-config", "--config", "/nonexistent/worker.toml"])
        #expect(run.status == 78)
        #expect(run.stderr == "dgrid: cannot read the worker config /nonexistent/worker.toml: No such file or directory; fix the path given to --config or DGRID_CONFIG\n",
                "\(run.stderr)")
    }

    /// A lowered `max_timeout_seconds` rejects a task the built-in maximum
    /// would run, with the reason; a lowered `output_limit` caps captured output.
    @Test func limitsFromTheFileApplyToARealWorker() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        let tasks = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-config-tasks-\(UUID().uuidString.prefix(8))")
        defer {
            for path in [repo, home.path, tasks] { try? FileManager.default.removeItem(atPath: path) }
        }
        try Data("max_timeout_seconds = 5\noutput_limit = 100\n".utf8).write(to: URL(fileURLWithPath: home.path + "/worker.toml"))
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        try GridFixture.taskFile(tasks, "long", "echo never", timeout: 10)
        try GridFixture.taskFile(tasks, "chatty", "printf '%01000d' 0", timeout: 5)
        let submitted = try home.dgrid("submit", "--repo", url, tasks)
        #expect(submitted.status == 0, "\(submitted.stderr)")

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")

        let files = try GridFixture.mainFiles(repo)
        #expect(files.contains("tasks/rejected/long.json.log"), "\(files)")
        let rejection = try GridFixture.show(repo, "tasks/rejected/long.json.log")
        #expect(rejection.contains("timeout_seconds"), "\(rejection)")
        #expect(rejection.contains("10 is outside 1...5"), "\(rejection)")

        let completed = try #require(files.first { $0.hasSuffix("-chatty.json.log") }, "\(files)")
        let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, completed).utf8)) as? [String: Any] ?? [:]
        #expect(record["stdout_truncated"] as? Bool == true, "\(record)")
        #expect((record["stdout"] as? String)?.hasPrefix(String(repeating: "0", count: 100)) == true, "\(record)")
        #expect((record["stdout"] as? String)?.contains(String(repeating: "0", count: 101)) == false, "\(record)")
    }
}
