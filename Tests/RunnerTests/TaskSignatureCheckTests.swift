import Foundation
import Testing
import TestSupport
@testable import Runner
@testable import Trust

/// The trust check a worker makes before running a task (docs/ARCHITECTURE.md §9),
/// on tasks signed by the real `ssh-keygen -Y sign`: the issue's table of bad
/// input, each refused with its reason, and the good cases accepted.
@Suite(.system, .serialized)
final class TaskSignatureCheckTests {
    let dir: URL
    let grid = GridID("g-0123456789abcdef0123456789abcdef")!
    let otherGrid = "g-ffffffffffffffffffffffffffffffff"

    init() throws {
        dir = try TempDir.make(prefix: "dgrid-tasksig")
        for name in ["alice", "bob", "mallory"] {
            try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", dir.appendingPathComponent(name).path])
        }
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func publicKey(_ name: String) throws -> String {
        try String(contentsOf: dir.appendingPathComponent(name + ".pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func taskBytes(_ id: String = "t1", grid: String? = nil, notAfter: String? = nil) -> [UInt8] {
        var json = #"{"task_id":"\#(id)","script":"echo hi","timeout_seconds":30"#
        if let grid = grid ?? Optional(self.grid.value) { json += #","grid":"\#(grid)""# }
        if let notAfter { json += #","not_after":"\#(notAfter)""# }
        return Array((json + "}").utf8)
    }

    /// ssh-keygen's signature over `bytes` by `signer`, for `namespace`.
    func sign(_ bytes: [UInt8], by signer: String, namespace: String = "dgrid-task") throws -> [UInt8] {
        let file = dir.appendingPathComponent("task-\(UUID().uuidString.prefix(6)).json")
        try Data(bytes).write(to: file)
        try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", dir.appendingPathComponent(signer).path, "-n", namespace, file.path])
        return Array(try Data(contentsOf: URL(fileURLWithPath: file.path + ".sig")))
    }

    func checker(_ allowedSigners: String, revoked: [String] = [], policy: TrustPolicy = TrustPolicy(),
                 allowUnsigned: Bool = false) throws -> TaskSignatureCheck {
        let store = TrustStore(allowedSigners: try AllowedSigners.parse(allowedSigners),
                               revokedKeys: RevokedKeys(try revoked.map { try SSHPublicKey(line: $0) }))
        return TaskSignatureCheck(trust: HostTrust(store: store, policy: policy), allowUnsigned: allowUnsigned)
    }

    func run(_ check: TaskSignatureCheck, _ bytes: [UInt8], _ sig: [UInt8]?, finished: Bool = false,
             grid: GridID?? = nil) throws(TaskTrustRefusal) -> TaskAuthentication {
        guard case .success(let task) = TaskParser.parse(bytes) else { fatalError("test task does not parse") }
        return try check.check(task: task, bytes: bytes, signatureFile: sig, grid: grid ?? self.grid, finished: finished)
    }

    @Test func aTaskSignedByATrustedKeyForThisGridIsAcceptedWithItsPrincipal() throws {
        let check = try checker("alice@example.com \(try publicKey("alice"))")
        let bytes = taskBytes()
        let auth = try run(check, bytes, try sign(bytes, by: "alice"))
        #expect(auth.principals == ["alice@example.com"] && auth.fingerprints.count == 1)
    }

    @Test func everyBadInputIsRefusedWithItsReason() throws {
        let alice = try publicKey("alice")
        let check = try checker("alice@example.com \(alice)\nold@example.com valid-before=\"20200101Z\" \(try publicKey("bob"))")
        let bytes = taskBytes()
        let good = try sign(bytes, by: "alice")
        func refusal(_ body: () throws(TaskTrustRefusal) -> TaskAuthentication) -> TaskTrustRefusal? {
            do { _ = try body(); return nil } catch { return error }
        }
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, bytes, nil) } == .unsigned)
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, bytes, try! sign(bytes, by: "mallory")) }
                == .signer(.unknownKey(fingerprint: try SSHPublicKey(line: try publicKey("mallory")).fingerprint)))
        // One byte of the script changed after signing.
        let changed = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "echo hi", with: "echo hI").utf8)
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, changed, good) } == .signatureFile(.badSignature))
        let other = taskBytes("t2")
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, other, good) } == .signatureFile(.badSignature), "another task's .sig")
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, bytes, try! sign(bytes, by: "alice", namespace: "file")) }
                == .signatureFile(.wrongNamespace(expected: "dgrid-task", found: "file")))
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, bytes, Array(good.prefix(good.count / 2))) }.map { "\($0)" }?.contains("not a valid SSH signature") == true, "truncated")
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, bytes, Array("garbage".utf8)) }.map { "\($0)" }?.contains("not a valid SSH signature") == true, "garbage")
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, bytes, try! sign(bytes, by: "bob")) }
                == .signer(.expired(principal: "old@example.com", validBefore: 1_577_836_800)))
        let revoking = try checker("alice@example.com \(alice)", revoked: [alice])
        #expect(refusal { () throws(TaskTrustRefusal) in try run(revoking, bytes, good) }
                == .signer(.revoked(fingerprint: try SSHPublicKey(line: alice).fingerprint)))
        let elsewhere = taskBytes(grid: otherGrid)
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, elsewhere, try! sign(elsewhere, by: "alice")) }
                == .otherGrid(named: otherGrid, this: grid))
        let noGridNamed = Array(#"{"task_id":"t1","script":"echo hi","timeout_seconds":30}"#.utf8)
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, noGridNamed, try! sign(noGridNamed, by: "alice")) } == .gridNotNamed)
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, bytes, good, grid: .some(nil)) } == .noGrid)
        let stale = taskBytes(notAfter: "2020-01-01T00:00:00Z")
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, stale, try! sign(stale, by: "alice")) } == .expired(notAfter: "2020-01-01T00:00:00Z"))
        #expect(refusal { () throws(TaskTrustRefusal) in try run(check, bytes, good, finished: true) } == .alreadyFinished(taskID: "t1"))
    }

    @Test func minSignersCountsDistinctTrustedPrincipals() throws {
        let signers = "alice@example.com \(try publicKey("alice"))\nbob@example.com \(try publicKey("bob"))"
        let check = try checker(signers, policy: TrustPolicy(minSigners: 2))
        let bytes = taskBytes()
        let alice = try sign(bytes, by: "alice"), bob = try sign(bytes, by: "bob"), mallory = try sign(bytes, by: "mallory")
        #expect(throws: TaskTrustRefusal.tooFewSigners(have: ["alice@example.com"], need: 2)) { try run(check, bytes, alice) }
        #expect(throws: TaskTrustRefusal.tooFewSigners(have: ["alice@example.com"], need: 2)) { try run(check, bytes, alice + alice) }
        #expect(throws: TaskTrustRefusal.tooFewSigners(have: ["alice@example.com"], need: 2)) { try run(check, bytes, alice + mallory) }
        #expect(try run(check, bytes, alice + bob).principals == ["alice@example.com", "bob@example.com"])
    }

    @Test func unsignedTasksRunOnlyWhereTheHostSaysSo() throws {
        let bytes = Array(#"{"task_id":"t1","script":"echo hi","timeout_seconds":30}"#.utf8)
        #expect(try run(try checker("", allowUnsigned: true), bytes, nil).principals.isEmpty)
        #expect(try run(try checker("", policy: TrustPolicy(requireSignatures: false)), bytes, nil).principals.isEmpty)
        // A signed task is still checked in full where unsigned ones may run.
        #expect(throws: TaskTrustRefusal.self) { try run(try checker("", allowUnsigned: true), bytes, try sign(bytes, by: "alice")) }
    }

    @Test func thePolicyFileIsStrict() throws {
        #expect(try TrustPolicy.parse("require_signatures = false\nmin_signers = 2\n", source: "p") == TrustPolicy(requireSignatures: false, minSigners: 2))
        #expect(try TrustPolicy.parse("", source: "p") == TrustPolicy())
        for (text, reason) in [("require_signature = false", "unknown key"), ("min_signers = 0", "min_signers"),
                               ("require_signatures = \"no\"", "require_signatures"), ("min_signers = ", "p")] {
            #expect(throws: TrustFileError.self, "\(text)") { _ = try TrustPolicy.parse(text, source: "p") }
            do { _ = try TrustPolicy.parse(text, source: "p") } catch { #expect("\(error)".contains(reason), "\(error)") }
        }
    }
}
