import Foundation
import Testing
import TestSupport

/// The worker's webhooks against a real loopback receiver (docs/ARCHITECTURE.md §12):
/// every body signed with HMAC-SHA256 (the receiver checks it with the secret),
/// a 500 retried until it is taken, health changes sent as they happen, and a
/// receiver that hangs never holding a task: delivery has its own thread.
@Suite(.system, .serialized) struct WebhookCLITests {
    @Test func theWorkerSignsItsEventsAndRetriesA500() throws {
        let receiver = try OperationsFixture.receiver("500,200")
        defer { receiver.stop() }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-hooks-tasks").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        try GridFixture.taskFile(tasks, "hooked", "echo ran")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        // --allow-unsigned is a security event: it goes out as a webhook.
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "w_hooks", "--once", "--allow-unsigned",
                                    "--webhook", receiver.url, "--webhook-secret-file", receiver.secretFile)
        #expect(worker.status == 0, "\(worker.stderr)")
        #expect(!worker.stderr.contains(OperationsFixture.secretText), "the secret is never logged")
        #expect(try GridFixture.mainFiles(repo).contains("tasks/completed/w_hooks-hooked.json"))
        let requests = receiver.requests
        #expect(requests.count == 2, "one 500, then the same event again: \(requests)")
        #expect(requests.allSatisfy { $0["signature_ok"] as? Bool == true }, "every body verifies with the secret: \(requests)")
        let ids = requests.compactMap { ($0["headers"] as? [String: String])?["X-DGrid-Event-Id"] }
        #expect(ids.count == 2 && Set(ids).count == 1, "a retry is the same event: \(ids)")
        let body = try #require(receiver.bodies("security").last)
        #expect((body["data"] as? [String: Any])?["event"] as? String == "unsigned_allowed", "\(body)")
        #expect((body["source"] as? [String: Any])?["node_id"] as? String == "w_hooks")
        #expect(body["id"] as? String == ids.first && (body["time"] as? String)?.hasSuffix("Z") == true)
    }

    /// A long-running worker without its default image starts unhealthy (a
    /// webhook says so, with the published reason), and says it is healthy again
    /// once the image is there and its self-check passes.
    @Test func healthChangesAreSentAsTheyHappen() throws {
        let receiver = try OperationsFixture.receiver()
        defer { receiver.stop() }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try ImageCLITests.Home()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let log = try TempDir.make(prefix: "dgrid-hooks-health").path + "/worker.log"
        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "w_health", "--webhook", receiver.url,
                                                   "--set", "poll_seconds=0.5"],
                                                  home: home, log: log, environment: ["DGRID_WEBHOOK_SECRET": OperationsFixture.secretText])
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
        #expect(GridFaultCLITests.waitUntil(20) { !receiver.bodies("node.unhealthy").isEmpty }, "\(receiver.requests)")
        let unhealthy = try #require(receiver.bodies("node.unhealthy").first)
        let data = unhealthy["data"] as? [String: Any] ?? [:]
        #expect(data["check"] as? String == "image" && (data["reason"] as? String)?.contains("dgrid/busybox") == true, "\(data)")
        #expect(!(data["reason"] as? String ?? "").contains(home.path), "no host path in a published reason")

        _ = try home.importBusybox()
        #expect(try home.dgrid("image", "allow", "dgrid/busybox:latest", "--approved-by", "test").status == 0)
        #expect(GridFaultCLITests.waitUntil(30) { !receiver.bodies("node.healthy").isEmpty },
                "\(receiver.requests) \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(receiver.requests.allSatisfy { $0["signature_ok"] as? Bool == true })
        #expect(receiver.bodies("node.unhealthy").count == 1, "one event per change, not per failed self-check")
    }

    /// The receiver reads each request and never answers. The tasks run and are
    /// published at once (a slot never waits on delivery); the worker gives its
    /// queue a bounded flush at exit and ends.
    @Test func aReceiverThatHangsNeverHoldsATask() throws {
        let receiver = try OperationsFixture.receiver("hang")
        defer { receiver.stop() }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-hooks-hang").path
        defer { try? FileManager.default.removeItem(atPath: tasks) }
        for i in 0..<3 { try GridFixture.taskFile(tasks, "quick\(i)", "echo \(i)") }
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        let started = Date()
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "w_hang", "--once", "--allow-unsigned",
                                    "--webhook", receiver.url, "--webhook-secret-file", receiver.secretFile)
        let took = Date().timeIntervalSince(started)
        #expect(worker.status == 0, "\(worker.stderr)")
        let completed = try GridFixture.mainFiles(repo).filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix(".json") }
        #expect(completed.count == 3, "\(completed)")
        // Each task from its claim to its published result, while the webhook's first attempt hangs for 10 s.
        for i in 0..<3 {
            let claimed = OperationsFixture.time(of: "claimed attempt=1", in: worker.stderr.split(separator: "\n").filter { $0.contains("task=quick\(i)") }.joined(separator: "\n"))
            let published = OperationsFixture.time(of: "published", in: worker.stderr.split(separator: "\n").filter { $0.contains("task=quick\(i)") }.joined(separator: "\n"))
            let start = try #require(claimed, "quick\(i) claimed: \(worker.stderr)")
            let span = try #require(published?.timeIntervalSince(start), "quick\(i) published: \(worker.stderr)")
            #expect(span <= 2, "quick\(i) took \(span) s from claim to result")
        }
        // Bounded: the run plus the 5 s flush, never the retry schedule of a dead receiver (minutes).
        #expect(took < 30, "the worker took \(took) s")
        #expect(receiver.requests.count >= 1, "the receiver was reached")
    }
}
