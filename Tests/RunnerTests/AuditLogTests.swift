import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import Runner

/// The host's audit log (docs/ARCHITECTURE.md §9): JSON lines, 0600, appended,
/// rotated, refused when it is not this user's private file.
@Suite(.unit)
struct AuditLogTests {
    @Test func eventsRoundTripAsOneLineEach() throws {
        let dir = try TempDir.make(prefix: "dgrid-audit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = AuditLog(path: dir.path + "/audit.log")
        let time = Date(timeIntervalSince1970: 1_780_000_000)
        let events = [
            AuditEvent(time: time, kind: .signatureAccepted, nodeID: "n1", taskID: "t1", principals: ["alice@example.com"], fingerprints: ["SHA256:x"]),
            AuditEvent(time: time, kind: .signatureRefused, nodeID: "n1", taskID: "t2", reason: "a \"quoted\"\nreason\u{1b}[2J"),
        ]
        events.forEach(log.record)
        let text = try String(contentsOfFile: log.path, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 2, "one line per event, control characters escaped: \(text)")
        #expect(AuditLog.read(path: log.path) == events)
        var info = stat()
        #expect(stat(log.path, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    @Test func aLogOthersCanReadOrWriteIsNotWrittenAndSaysSoOnce() throws {
        let dir = try TempDir.make(prefix: "dgrid-audit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.path + "/audit.log"
        FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644])
        let complaints = Mutex<[String]>([])
        let log = AuditLog(path: path) { problem in complaints.withLock { $0.append(problem) } }
        log.record(AuditEvent(kind: .signatureRefused, taskID: "t1"))
        log.record(AuditEvent(kind: .signatureRefused, taskID: "t2"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).isEmpty)
        #expect(complaints.withLock { $0.count } == 1 && complaints.withLock { $0[0] }.contains("mode 0600"))
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: dir.path + "/elsewhere")
        AuditLog(path: path).record(AuditEvent(kind: .signatureRefused, taskID: "t3"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/elsewhere"), "a symlink is never followed")
    }

    @Test func theLogRotatesPastItsSizeAndKeepsThree() throws {
        let dir = try TempDir.make(prefix: "dgrid-audit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.path + "/audit.log"
        let limit = 64 << 10
        let log = AuditLog(path: path, rotateBytes: limit)
        let reason = String(repeating: "x", count: 4 << 10)
        let count = 100  // ~400 KB: six rotations' worth
        for i in 0..<count { log.record(AuditEvent(kind: .signatureRefused, taskID: "t\(i)", reason: reason)) }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files == ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"], "\(files)")
        for file in files {
            var info = stat()
            #expect(stat(dir.path + "/" + file, &info) == 0 && Int(info.st_size) <= limit)
        }
        let events = AuditLog.read(path: path)
        #expect(events.last?.taskID == "t\(count - 1)", "newest last")
        #expect(events.map(\.taskID) == (count - events.count..<count).map { "t\($0)" }, "oldest first, none lost within what is kept")
    }
}
