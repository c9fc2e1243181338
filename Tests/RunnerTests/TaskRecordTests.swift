import Foundation
import Testing
@testable import Runner
import TestSupport

private func object(_ bytes: [UInt8]) throws -> [String: LedgerJSON.Value] {
    guard case .object(let members) = try LedgerJSON.parse(bytes).get() else { throw LedgerJSON.SyntaxError(message: "not an object", offset: 0) }
    return members
}

@Suite("Result, claim and node records", .unit)
struct TaskRecordTests {
    static let full = ResultRecord(
        taskID: "hello", nodeID: "node_1", exitCode: 0, stdout: "hi\n", stderr: "warn: \"x\"\u{1}",
        timestamp: "2026-11-29T10:00:05Z", status: .completed, startedAt: "2026-11-29T10:00:00Z",
        finishedAt: "2026-11-29T10:00:05Z", durationMs: 5012, timedOut: false, oomKilled: false, signal: nil,
        cpuMs: 40, maxRSSBytes: 3 << 20, stdoutBytes: 3, stdoutTruncated: false, stderrBytes: 9,
        stderrTruncated: true, stdoutSHA256: String(repeating: "ab", count: 32), imageDigest: "sha256:" + String(repeating: "0", count: 64),
        attempt: 2, workerVersion: "0.1.0")

    @Test func resultRoundTrips() throws {
        #expect(ResultRecord.parse(Self.full.json()) == Self.full)
        var killed = Self.full
        killed.signal = 9
        killed.exitCode = 137
        killed.status = .failed
        killed.cpuMs = nil
        #expect(ResultRecord.parse(killed.json()) == killed)
    }

    @Test func resultUsesDGridAndDesignFieldNames() throws {
        let keys = Set(try object(Self.full.json()).keys)
        #expect(keys == [
            "task_id", "node_id", "exit_code", "stdout", "stderr", "timestamp", "status",
            "started_at", "finished_at", "duration_ms", "timed_out", "oom_killed", "signal", "cpu_ms",
            "max_rss_bytes", "stdout_bytes", "stdout_truncated", "stderr_bytes", "stderr_truncated",
            "stdout_sha256", "image_digest", "attempt", "worker_version", "previous_attempts",
        ])
        let text = String(decoding: Self.full.json(), as: UTF8.self)
        // Sorted and pretty, the way D-GRID's json.dump(indent=2, sort_keys=True) writes.
        #expect(text.hasPrefix("{\n  \"attempt\": 2,\n  \"cpu_ms\": 40,\n  \"duration_ms\": 5012,"))
        #expect(text.contains("\n  \"signal\": null,"))
        #expect(text.hasSuffix("\n  \"worker_version\": \"0.1.0\"\n}\n"))
    }

    @Test func dgridSevenFieldRecordReadsWithDefaults() throws {
        let record = try #require(ResultRecord.parse(Array("""
            {"task_id": "hello", "node_id": "n1", "exit_code": 1, "stdout": "", "stderr": "boom",
             "timestamp": "2024-05-01T12:00:00.123456", "status": "failed"}
            """.utf8)))
        #expect(record.exitCode == 1 && record.status == .failed && record.stderr == "boom")
        #expect(record.attempt == 1 && record.durationMs == 0 && !record.timedOut && record.signal == nil)
        #expect(record.stderrBytes == 4)
    }

    @Test func missingStatusFollowsTheDGridRule() throws {
        #expect(ResultStatus(exitCode: 0, timedOut: false, oomKilled: false) == .completed)
        #expect(ResultStatus(exitCode: 0, timedOut: true, oomKilled: false) == .failed)
        #expect(ResultStatus(exitCode: 0, timedOut: false, oomKilled: true) == .failed)
        #expect(ResultStatus(exitCode: 2, timedOut: false, oomKilled: false) == .failed)
        let record = try #require(ResultRecord.parse(Array(#"{"task_id":"t","node_id":"n","exit_code":0,"timed_out":true}"#.utf8)))
        #expect(record.status == .failed)
        // A status dgrid does not know is not taken on trust: the exit code decides.
        let odd = try #require(ResultRecord.parse(Array(#"{"task_id":"t","node_id":"n","exit_code":0,"status":"done-ish"}"#.utf8)))
        #expect(odd.status == .completed)
    }

    /// Unknown task fields reach the result record, so the submitter sees they did nothing.
    @Test func unknownFieldsAreListedInTheRecordAndReadBack() throws {
        var record = Self.full
        record.unknownFields = ["gpu", "retries"]
        let text = String(decoding: record.json(), as: UTF8.self)
        #expect(text.contains("\"unknown_fields\""), "\(text)")
        #expect(ResultRecord.parse(record.json())?.unknownFields == ["gpu", "retries"])
        #expect(!String(decoding: Self.full.json(), as: UTF8.self).contains("unknown_fields"), "absent when there are none")
    }

    @Test(arguments: [
        "", "[]", "{", #"{"node_id":"n","exit_code":0}"#, #"{"task_id":"t","exit_code":0}"#,
        #"{"task_id":"t","node_id":"n"}"#, #"{"task_id":"../t","node_id":"n","exit_code":0}"#,
        #"{"task_id":"t","node_id":"a/b","exit_code":0}"#, #"{"task_id":"t","node_id":"n","exit_code":"0"}"#,
        #"{"task_id":"t","node_id":"n","exit_code":4294967296}"#,
    ])
    func malformedResultsAreNil(text: String) {
        #expect(ResultRecord.parse(Array(text.utf8)) == nil)
    }

    @Test func claimRoundTripsWithDesignNames() throws {
        let claim = ClaimRecord(taskID: "hello", nodeID: "n1", attempt: 3, claimedAt: "2026-11-29T10:00:00Z",
                                leaseUntil: "2026-11-29T10:05:00Z", progress: "50%")
        #expect(ClaimRecord.parse(claim.json()) == claim)
        var bare = claim
        bare.progress = nil
        #expect(ClaimRecord.parse(bare.json()) == bare)
        #expect(Set(try object(claim.json()).keys) == ["task_id", "node_id", "attempt", "claimed_at", "lease_until", "progress",
                                                       "state", "previous_attempts"])
        // A record of a worker that knew no state or history reads as held, with none.
        let old = try #require(ClaimRecord.parse(Array(#"{"task_id":"t","node_id":"n","attempt":2,"lease_until":"2026-11-29T10:05:00Z"}"#.utf8)))
        #expect(old.state == .held && old.previousAttempts.isEmpty)
    }

    @Test func claimKeepsHowEveryEarlierAttemptEnded() throws {
        var claim = ClaimRecord(taskID: "hello", nodeID: "n2", attempt: 2, claimedAt: "2026-11-29T10:00:00Z",
                                leaseUntil: "2026-11-29T10:05:00Z")
        claim.previousAttempts = [AttemptRecord(attempt: 1, nodeID: "n1", claimedAt: "2026-11-29T09:00:00Z",
                                                endedAt: "2026-11-29T09:01:30Z", end: .leaseExpired,
                                                reason: "lease expired at 2026-11-29T09:01:30Z (worker n1 stopped renewing)")]
        claim.state = .released
        #expect(ClaimRecord.parse(claim.json()) == claim)
        let text = String(decoding: claim.json(), as: UTF8.self)
        #expect(text.contains("\"end\": \"lease_expired\"") && text.contains("\"state\": \"released\""), "\(text)")
    }

    @Test(arguments: [
        #"{"task_id":"t","node_id":"n","attempt":1}"#,
        #"{"task_id":"t","node_id":"n","attempt":1,"lease_until":"soon"}"#,
        #"{"task_id":"t","node_id":"n","attempt":0,"lease_until":"2026-11-29T10:05:00Z"}"#,
        #"{"task_id":"t/..","node_id":"n","attempt":1,"lease_until":"2026-11-29T10:05:00Z"}"#,
        #"{"task_id":"t","node_id":"n","attempt":1,"lease_until":"2026-11-29T10:05:00Z","state":"stolen"}"#,
        #"{"task_id":"t","node_id":"n","attempt":1,"lease_until":"2026-11-29T10:05:00Z","previous_attempts":{}}"#,
        #"{"task_id":"t","node_id":"n","attempt":1,"lease_until":"2026-11-29T10:05:00Z","previous_attempts":[{"attempt":1,"node_id":"a/b","end":"host_fault","reason":""}]}"#,
        #"{"task_id":"t","node_id":"n","attempt":1,"lease_until":"2026-11-29T10:05:00Z","previous_attempts":[{"attempt":1,"node_id":"m","end":"gone","reason":""}]}"#,
        #"{"task_id":"t","node_id":"n","attempt":1,"lease_until":"2026-11-29T10:05:00Z","previous_attempts":[{"attempt":0,"node_id":"m","end":"host_fault","reason":""}]}"#,
    ])
    func malformedClaimsAreNil(text: String) {
        #expect(ClaimRecord.parse(Array(text.utf8)) == nil)
    }

    @Test func nodeRoundTripsWithDGridNames() throws {
        let node = NodeRecord(nodeID: "n1", nodeName: "worker one", cpuCount: 8, memoryGB: 15.5, diskGB: 100,
                              lastHeartbeat: "2026-11-29T10:00:00Z", status: "active", slots: 4, workerVersion: "0.1.0")
        #expect(NodeRecord.parse(node.json()) == node)
        #expect(Set(try object(node.json()).keys) == [
            "node_id", "node_name", "cpu_count", "memory_gb", "disk_gb", "last_heartbeat", "status", "slots", "worker_version",
            "health", "reason",
        ])
        var sick = node
        sick.health = .unhealthy(reason: "default image dgrid/busybox:latest is not here; fix: dgrid image import DIR")
        #expect(NodeRecord.parse(sick.json()) == sick)
        // D-GRID's own node file, without dgrid's fields.
        let dgrid = try #require(NodeRecord.parse(Array("""
            {"node_id":"n2","node_name":"box","cpu_count":2,"memory_gb":3.8,"disk_gb":50.2,"last_heartbeat":"2024-05-01T12:00:00","status":"active"}
            """.utf8)))
        #expect(dgrid.slots == 1 && dgrid.memoryGB == 3.8 && dgrid.workerVersion == "" && dgrid.health == .healthy)
        #expect(NodeRecord.parse(Array(#"{"node_id":"../../x"}"#.utf8)) == nil)
    }

    @Test func isoTimeRoundTripsAndReadsDGridTimes() throws {
        let date = Date(timeIntervalSince1970: 1_795_946_400)  // 2026-11-29T10:00:00Z
        #expect(ISOTime.string(date) == "2026-11-29T10:00:00Z")
        #expect(ISOTime.parse("2026-11-29T10:00:00Z") == date)
        #expect(ISOTime.string(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(ISOTime.string(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00Z")
        #expect(ISOTime.string(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59Z")
        #expect(ISOTime.parse("2026-11-29T11:30:00+01:30") == date)
        #expect(ISOTime.parse("2026-11-29T10:00:00") == date)  // D-GRID's naive isoformat()
        let fractional = try #require(ISOTime.parse("2026-11-29T10:00:00.250Z"))
        #expect(abs(fractional.timeIntervalSince(date) - 0.25) < 1e-6)
        for bad in ["", "2026-11-29", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-29T24:00:00Z",
                    "2026-11-29T10:00:00ZZ", "2026-11-29T10:00:00.Z", "2026-11-29 10:00:00Z", "２026-11-29T10:00:00Z"] {
            #expect(ISOTime.parse(bad) == nil, "\(bad)")
        }
    }
}
