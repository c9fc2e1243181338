import Foundation
import Testing
import TestSupport

/// A task whose sandbox cannot be set up is published as failed with the
/// stage and the errno, never with the worker's host paths ($DGRID_HOME, the
/// run directory, the layer store): everyone who reads the repository reads
/// the record. The full error, paths included, stays in the worker's log.
@Suite(.system, .serialized) struct GridSetupFailureCLITests {
    @Test func aSetupFailurePublishesNoHostPathAndLogsTheWholeError() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let url = "file://" + repo
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        // A two-layer image: its run needs a run directory under $DGRID_HOME/run.
        let imported = try home.dgrid("image", "import", try OverlayFallbackCLITests.layout("two"))
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try home.dgrid("image", "allow", "test/two:v1", "--approved-by", "test").status == 0)
        // ...which cannot be made: $DGRID_HOME/run is a file.
        let run = home.path + "/run"
        try? FileManager.default.removeItem(atPath: run)
        #expect(FileManager.default.createFile(atPath: run, contents: Data("not a directory\n".utf8)))

        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = NSTemporaryDirectory() + "dgrid-setup-tasks-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try GridFixture.taskFile(tasks, "unstartable", "echo ran-after-all", extra: ",\"image\":\"test/two:v1\"")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let log = worker.stdout + worker.stderr

        let files = try GridFixture.mainFiles(repo)
        let recordPath = "tasks/failed/node_a-unstartable.json.log"
        try #require(files.contains(recordPath), "\(files)\n\(log)")
        let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, recordPath).utf8)) as? [String: Any] ?? [:]
        let stderr = record["stderr"] as? String ?? ""
        #expect(stderr.hasPrefix("sandbox setup failed: preparing the rootfs (rootfs)"), "\(stderr)")
        #expect(record["exit_code"] as? Int == 125)
        #expect(record["stdout"] as? String == "", "the task never ran")
        // No field of any record of the task names a host path.
        let hostPaths = [home.path, run, NSTemporaryDirectory(), "/tmp/", "dgrid-cli-home"]
        for path in files where path.contains("unstartable") {
            let text = try GridFixture.show(repo, path)
            let fields = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
            for (name, value) in fields {
                for hostPath in hostPaths {
                    #expect(!"\(value)".contains(hostPath), "\(path) \(name) names \(hostPath): \(value)")
                }
            }
            for hostPath in hostPaths { #expect(!text.contains(hostPath), "\(path) names \(hostPath)") }
        }
        // The worker's own log has the whole error, path and all.
        #expect(log.contains(run), "\(log)")
        #expect(log.contains("unstartable"), "\(log)")
    }
}
