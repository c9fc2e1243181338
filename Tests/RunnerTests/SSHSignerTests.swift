import Foundation
import Testing
import TestSupport
@testable import Trust

/// The in-process signer a worker signs its records with (docs/ARCHITECTURE.md §11):
/// a key made by OpenSSH's ssh-keygen, a signature ssh-keygen itself accepts —
/// byte for byte the one `ssh-keygen -Y sign` makes (Ed25519 is deterministic).
@Suite(.system, .serialized)
struct SSHSignerTests {
    let record = Array(#"{"task_id":"t1","node_id":"w1","exit_code":0}"#.utf8)

    private func keygen(_ dir: URL, name: String, options: [String] = ["-t", "ed25519"], passphrase: String = "") throws -> URL {
        let key = dir.appendingPathComponent(name)
        try Shell.check(["ssh-keygen", "-q"] + options + ["-N", passphrase, "-C", "\(name)@test", "-f", key.path])
        return key
    }

    private func bytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    @Test func aSignatureIsTheOneSSHKeygenMakesAndSSHKeygenVerifiesIt() throws {
        let dir = try TempDir.make(prefix: "dgrid-signer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try keygen(dir, name: "w1")
        let signer = try SSHSigner(privateKeyFile: try bytes(key))
        #expect(signer.publicKey == (try SSHPublicKey(line: String(decoding: try bytes(key.appendingPathExtension("pub")), as: UTF8.self))))
        let ours = signer.sign(record, namespace: "dgrid-result")

        let file = dir.appendingPathComponent("result.json")
        try Data(record).write(to: file)
        try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", key.path, "-n", "dgrid-result", file.path])
        #expect(ours == (try bytes(file.appendingPathExtension("sig"))), "\(String(decoding: ours, as: UTF8.self))")

        // OpenSSH checks ours; and ours verifies in-process, for this namespace only.
        try Data(ours).write(to: dir.appendingPathComponent("ours.sig"))
        let check = try Shell.run(["sh", "-c", "ssh-keygen -Y check-novalidate -n dgrid-result -s \(dir.path)/ours.sig < \(file.path)"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(try SSHSignature(armored: ours).verify(record, namespace: "dgrid-result") == signer.publicKey)
        #expect(throws: SignatureRefusal.self) { _ = try SSHSignature(armored: ours).verify(record, namespace: "dgrid-task") }
        var changed = record
        changed[3] ^= 1
        #expect(throws: SignatureRefusal.badSignature) { _ = try SSHSignature(armored: ours).verify(changed, namespace: "dgrid-result") }
    }

    @Test func keysItCannotOrMustNotSignWithAreRefusedWithTheReason() throws {
        let dir = try TempDir.make(prefix: "dgrid-signer")
        defer { try? FileManager.default.removeItem(at: dir) }
        func refusal(_ file: [UInt8]) -> String {
            do { _ = try SSHSigner(privateKeyFile: file); return "accepted" } catch { return "\(error)" }
        }
        #expect(refusal(try bytes(try keygen(dir, name: "locked", passphrase: "secret phrase"))).contains("encrypted"))
        #expect(refusal(try bytes(try keygen(dir, name: "ecdsa", options: ["-t", "ecdsa", "-b", "256"]))).contains("Ed25519"))
        #expect(refusal(Array("not a key".utf8)).contains("OPENSSH PRIVATE KEY"))
        #expect(refusal([UInt8](repeating: 0x41, count: 20_000)).contains("over"))

        // A file stitched from two keys (one's public half, the other's secret) signs as neither.
        let a = try bytes(try keygen(dir, name: "a")), b = try bytes(try keygen(dir, name: "b"))
        func body(_ file: [UInt8]) -> [UInt8] {
            let lines = String(decoding: file, as: UTF8.self).split(separator: "\n").dropFirst().dropLast()
            return Array(Data(base64Encoded: lines.joined())!)
        }
        // The secret section ends in seed ‖ public: the seed is the 32 bytes before the public key's last copy.
        func seedRange(_ blob: [UInt8], _ file: [UInt8]) throws -> Range<Int> {
            let public32 = Array(try SSHSigner(privateKeyFile: file).publicKey.blob.suffix(32))
            let last = blob.indices.dropLast(31).last { Array(blob[$0..<($0 + 32)]) == public32 }!
            return (last - 32)..<last
        }
        var stitched = body(a)
        let bBody = body(b)
        stitched.replaceSubrange(try seedRange(stitched, a), with: bBody[try seedRange(bBody, b)])
        let armored = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + Data(stitched).base64EncodedString() + "\n-----END OPENSSH PRIVATE KEY-----\n"
        #expect(refusal(Array(armored.utf8)).contains("does not make its public key"))
    }
}
