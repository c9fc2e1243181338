import Foundation
import Testing
import TestSupport

/// A host's fault is never the task's verdict (docs/ARCHITECTURE.md §7, "Host
/// faults"): a worker whose sandboxes cannot be set up gives the claim back at
/// once, says it is unhealthy in its node record (with no host path: everyone
/// reads it), claims nothing more, and another worker completes every task.
/// Before, the broken worker published each task it claimed as failed, which
/// is final: one broken host drained the queue into `failed/`.
@Suite(.system, .serialized) struct GridHostFaultCLITests {
    /// A worker home with the default image and the two-layer `test/two:v1`.
    static func homeWithTwoLayerImage() throws -> ImageCLITests.Home {
        let home = try GridFixture.workerHome()
        let imported = try home.dgrid("image", "import", try OverlayFallbackCLITests.layout("two"))
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try home.dgrid("image", "allow", "test/two:v1", "--approved-by", "test").status == 0)
        return home
    }

    @Test func aBrokenHostGivesEveryTaskBackAndAGoodHostCompletesThem() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let url = "file://" + repo
        let (broken, good) = (try Self.homeWithTwoLayerImage(), try Self.homeWithTwoLayerImage())
        defer { for home in [broken, good] { try? FileManager.default.removeItem(atPath: home.path) } }
        // The broken host: a run of a two-layer image needs $DGRID_HOME/run, which is a file.
        let run = broken.path + "/run"
        try? FileManager.default.removeItem(atPath: run)
        #expect(FileManager.default.createFile(atPath: run, contents: Data("not a directory\n".utf8)))

        #expect(try good.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-hostfault").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        for i in 0..<3 { try GridFixture.taskFile(tasks, "t\(i)", "echo ran-\(i)", extra: ",\"image\":\"test/two:v1\"") }
        #expect(try good.dgrid("submit", "--repo", url, tasks).status == 0)

        // The broken worker drains first: it gives its first claim back and stops.
        let first = try broken.dgrid("worker", "--repo", url, "--node-id", "node_bad", "--once")
        let log = first.stdout + first.stderr
        #expect(first.status != 0, "a drain that ended unhealthy says so: \(log)")
        #expect(first.stderr.contains("unhealthy"), "\(first.stderr)")
        #expect(log.contains(run), "the worker's own log has the whole error: \(log)")
        var files = try GridFixture.mainFiles(repo)
        #expect(!files.contains { $0.hasPrefix("tasks/failed/") && !$0.hasSuffix(".gitkeep") }, "\(files)")
        #expect(!files.contains { $0.hasPrefix("tasks/rejected/") && !$0.hasSuffix(".gitkeep") }, "\(files)")
        #expect(files.filter { $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") }.count == 3, "all still runnable: \(files)")
        // Its node record says why, and names no host path.
        let status = try GridFixture.status(good, url)
        let nodes = status["node_records"] as? [[String: Any]] ?? []
        let bad = nodes.first { $0["node_id"] as? String == "node_bad" }
        #expect(bad?["health"] as? String == "unhealthy", "\(nodes)")
        let reason = bad?["reason"] as? String ?? ""
        #expect(reason.contains("sandbox setup failed"), "\(reason)")
        for hostPath in [broken.path, run, NSTemporaryDirectory(), "dgrid-cli-home"] {
            #expect(!reason.contains(hostPath), "the node record names \(hostPath): \(reason)")
        }

        // The good worker completes every task, the one given back included.
        let second = try good.dgrid("worker", "--repo", url, "--node-id", "node_good", "--once")
        #expect(second.status == 0, "\(second.stderr)")
        files = try GridFixture.mainFiles(repo)
        let completed = files.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix(".json") }
        #expect(completed.sorted() == (0..<3).map { "tasks/completed/node_good-t\($0).json" }, "\(files)")
        #expect(!files.contains { ($0.hasPrefix("tasks/failed/") || $0.hasPrefix("tasks/rejected/")) && !$0.hasSuffix(".gitkeep") })
        // The record of the task the broken host gave back keeps that attempt.
        let records = try completed.map { path in
            try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path + ".log").utf8)) as? [String: Any] ?? [:]
        }
        let earlier = records.flatMap { ($0["previous_attempts"] as? [[String: Any]]) ?? [] }
        #expect(earlier.count == 1 && earlier.first?["node_id"] as? String == "node_bad"
                && earlier.first?["end"] as? String == "host_fault", "\(earlier)")
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty)
    }

    /// A fresh host has no default image: the worker refuses to drain, with the
    /// command that fixes it, and claims nothing.
    @Test func aHostWithoutTheDefaultImageRefusesToStartWithTheFix() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let url = "file://" + repo
        let fresh = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: fresh.path) }
        #expect(try fresh.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-noimage").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try GridFixture.taskFile(tasks, "plain", "echo hi")
        #expect(try fresh.dgrid("submit", "--repo", url, tasks).status == 0)

        let worker = try fresh.dgrid("worker", "--repo", url, "--node-id", "node_fresh", "--once")
        #expect(worker.status != 0)
        #expect(worker.stderr.contains("dgrid image import") && worker.stderr.contains("dgrid image allow"), "\(worker.stderr)")
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty, "nothing claimed")
        let files = try GridFixture.mainFiles(repo)
        #expect(files.contains("tasks/queue/normal/\(try Self.shard(of: "plain", in: files))/plain.json"), "\(files)")
    }

    /// The shard directory the queue placed `id` in.
    static func shard(of id: String, in files: [String]) throws -> String {
        let path = try #require(files.first { $0.hasSuffix("/\(id).json") && $0.hasPrefix("tasks/queue/") })
        return String(path.split(separator: "/")[3])
    }
}
