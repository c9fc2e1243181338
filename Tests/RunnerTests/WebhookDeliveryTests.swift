import Foundation
import Testing
import TestSupport
@testable import Runner

/// Webhook delivery end to end (docs/ARCHITECTURE.md §12): the dispatcher's
/// thread, the real `dgrid-registry webhook post` helper, and a loopback
/// receiver (scripts/webhook-receiver.py) that checks each signature with the
/// secret and answers as told. Short retry policies keep the runs brief; the
/// defaults are the unit tests' (`OperationsValueTests`).
@Suite(.system, .serialized)
struct WebhookDeliveryTests {
    /// The helper beside the binaries under test.
    static var helper: String {
        let bin = ProcessInfo.processInfo.environment["DGRID_BIN"].map { ($0 as NSString).deletingLastPathComponent }
            ?? TestSupport.packageRoot.appendingPathComponent(".build/debug").path
        return bin + "/dgrid-registry"
    }

    struct Receiver {
        let process: Process
        let log: String
        let url: WebhookURL
        let secret: WebhookSecret

        /// Each logged request, oldest first.
        var requests: [[String: Any]] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        /// SIGKILL: the test process may hand its children a blocked SIGTERM.
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// A receiver answering `answers` ("500,200", "hang", …) on a free port, and the dispatcher's secret.
    static func receiver(_ answers: String) throws -> Receiver {
        let dir = TestCleanup.removeAtExit(try TempDir.make(prefix: "dgrid-webhook").path)
        let secretPath = dir + "/secret", log = dir + "/requests.log"
        FileManager.default.createFile(atPath: secretPath, contents: Data("test-secret-0123456789abcdef\n".utf8), attributes: [.posixPermissions: 0o600])
        let port = try FreePort.loopback()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [TestSupport.packageRoot.appendingPathComponent("scripts/webhook-receiver.py").path, "\(port)", secretPath, log, answers]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        #expect(ListenerWait.until(10) { FileManager.default.fileExists(atPath: log + ".ready") }, "the receiver did not start")
        return Receiver(process: process, log: log, url: try WebhookURL(parsing: "http://127.0.0.1:\(port)/hook"),
                        secret: try #require(try WebhookSecret.load(file: secretPath)))
    }

    static func event(_ n: Int = 0) -> WebhookEvent {
        WebhookEvent(kind: .nodeUnhealthy, source: ["kind": "worker", "node_id": "w1"], data: ["n": .int(Int64(n)), "reason": .string("disk full")])
    }

    static func quick(attempts: Int, timeout: Double = 5) -> WebhookRetryPolicy {
        var policy = WebhookRetryPolicy()
        policy.maxAttempts = attempts
        policy.baseSeconds = 0.1
        policy.ceilingSeconds = 0.4
        policy.attemptTimeoutSeconds = timeout
        return policy
    }

    @Test func aSignedEventAnswered500IsRetriedAndDelivered() throws {
        let receiver = try Self.receiver("500,200")
        defer { receiver.stop() }
        let dispatcher = WebhookDispatcher(url: receiver.url, secret: receiver.secret, transport: HelperWebhookTransport(helper: Self.helper),
                                           policy: Self.quick(attempts: 4))
        dispatcher.start()
        let event = Self.event()
        dispatcher.send(event)
        #expect(dispatcher.flush(timeoutSeconds: 20))
        #expect(dispatcher.totalsSoFar == WebhookDispatcher.Totals(delivered: 1, failed: 0, dropped: 0, attempts: 2))
        let requests = receiver.requests
        #expect(requests.count == 2, "\(requests)")
        for request in requests {
            #expect(request["signature_ok"] as? Bool == true, "the receiver's HMAC check: \(request)")
            let headers = request["headers"] as? [String: String] ?? [:]
            #expect(headers["X-DGrid-Event-Id"] == event.id && headers["X-DGrid-Event"] == "node.unhealthy", "\(headers)")
            #expect(headers["X-DGrid-Timestamp"] == "\(Int(event.time.timeIntervalSince1970))")
            let body = request["body"] as? [String: Any] ?? [:]
            #expect(body["id"] as? String == event.id && body["type"] as? String == "node.unhealthy", "\(body)")
            #expect((body["data"] as? [String: Any])?["reason"] as? String == "disk full")
        }
        #expect(requests.map { $0["answer"] as? String } == ["500", "200"])
        dispatcher.stop()
    }

    /// A receiver that always fails is tried `maxAttempts` times, then the event is
    /// given up; one that refuses for good (4xx) or redirects is tried once.
    @Test(arguments: [("500", 3), ("503", 3), ("400", 1), ("302", 1)])
    func retriesStopAtTheirBound(_ answer: String, _ attempts: Int) throws {
        let receiver = try Self.receiver(answer)
        defer { receiver.stop() }
        let dispatcher = WebhookDispatcher(url: receiver.url, secret: receiver.secret, transport: HelperWebhookTransport(helper: Self.helper),
                                           policy: Self.quick(attempts: 3))
        dispatcher.start()
        let started = Date()
        dispatcher.send(Self.event())
        #expect(dispatcher.flush(timeoutSeconds: 30))
        #expect(Date().timeIntervalSince(started) < 15, "bounded")
        #expect(dispatcher.totalsSoFar == WebhookDispatcher.Totals(delivered: 0, failed: 1, dropped: 0, attempts: attempts), "\(answer)")
        #expect(receiver.requests.count == attempts, "\(answer): \(receiver.requests.count) requests")
        dispatcher.stop()
    }

    /// A receiver that never answers costs each attempt its timeout (the helper is
    /// killed soon after), never the sender: `send` returns at once, and a full
    /// queue drops its oldest events and counts them.
    @Test func aHangingReceiverNeverBlocksTheSender() throws {
        let receiver = try Self.receiver("hang")
        defer { receiver.stop() }
        let dispatcher = WebhookDispatcher(url: receiver.url, secret: receiver.secret, transport: HelperWebhookTransport(helper: Self.helper),
                                           policy: Self.quick(attempts: 1, timeout: 1), capacity: 3)
        dispatcher.start()
        let started = Date()
        for n in 0..<10 { dispatcher.send(Self.event(n)) }
        let sending = Date().timeIntervalSince(started)
        #expect(sending < 0.5, "ten sends took \(sending) s")
        let dropped = dispatcher.totalsSoFar.dropped
        #expect((6...7).contains(dropped), "a queue of 3 behind the one in flight: \(dropped) dropped")
        #expect(dispatcher.flush(timeoutSeconds: 30))
        let totals = dispatcher.totalsSoFar
        #expect(totals.failed + totals.dropped == 10 && totals.delivered == 0, "\(totals)")
        let perAttempt = Date().timeIntervalSince(started) / Double(totals.attempts)
        #expect(perAttempt < 3.5, "each attempt is bounded by its 1 s timeout (+2 s before a kill): \(perAttempt) s")
        #expect(receiver.requests.count == totals.attempts, "each attempt reached the receiver")
        dispatcher.stop()
    }
}
