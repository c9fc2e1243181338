import Foundation
import Testing
import TestSupport
@testable import Runner
@testable import Trust

/// OpenPGP detached signatures (`<task>.json.asc`, docs/ARCHITECTURE.md §9), made by
/// the real `gpg` and checked through `gpgv` against the host's keyring: the
/// signer's e-mail is its principal; tampering, unknown, expired and revoked
/// keys, weak hashes and garbage are refused with the reason.
@Suite(.system, .serialized)
final class OpenPGPSignatureTests {
    let dir: URL
    let gnupg: String
    let grid = GridID("g-0123456789abcdef0123456789abcdef")!

    init() throws {
        dir = try TempDir.make(prefix: "dgrid-openpgp")
        gnupg = dir.appendingPathComponent("gnupg").path
        try FileManager.default.createDirectory(atPath: gnupg, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try gpg(["--quick-gen-key", "Alice <alice@example.com>", "ed25519", "sign", "never"])
        try gpg(["--quick-gen-key", "Mallory <mallory@example.com>", "ed25519", "sign", "never"])
        // A key that expired long ago, made and used at a time when it was valid.
        try gpg(["--faked-system-time", "20200101T000000", "--quick-gen-key", "Old <old@example.com>", "ed25519", "sign", "1d"])
        try gpg(["--quick-gen-key", "Revoked <revoked@example.com>", "ed25519", "sign", "never"])
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    @discardableResult
    func gpg(_ args: [String]) throws -> String {
        let r = try ProcessRunner.run("/usr/bin/gpg", ["--homedir", gnupg, "--batch", "--yes", "--passphrase", "", "--pinentry-mode", "loopback"] + args)
        guard r.status == 0 else { throw TestFailure("gpg \(args): \(r.stderr)") }
        return r.stdout
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ text: String) { description = text }
    }

    func taskBytes(_ id: String = "t1") -> [UInt8] {
        Array(#"{"task_id":"\#(id)","script":"echo hi","timeout_seconds":30,"grid":"\#(grid.value)"}"#.utf8)
    }

    /// gpg's armored detached signature over `bytes` by `uid`.
    func sign(_ bytes: [UInt8], by uid: String, extra: [String] = []) throws -> [UInt8] {
        let file = dir.appendingPathComponent("task-\(UUID().uuidString.prefix(6)).json")
        try Data(bytes).write(to: file)
        try gpg(extra + ["--local-user", uid, "--armor", "--detach-sign", "--output", file.path + ".asc", file.path])
        return Array(try Data(contentsOf: URL(fileURLWithPath: file.path + ".asc")))
    }

    /// A checker whose keyring holds the public keys of `uids` (as `gpg --export` writes them).
    func checker(_ uids: [String]) throws -> TaskSignatureCheck {
        let exported = dir.appendingPathComponent("export-\(UUID().uuidString.prefix(6)).gpg").path
        try gpg(["--output", exported, "--export"] + uids)
        let keyring = OpenPGPKeyring(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: exported))), path: exported)
        return TaskSignatureCheck(trust: HostTrust(store: TrustStore(allowedSigners: AllowedSigners(entries: [])), openPGPKeyring: keyring))
    }

    func run(_ check: TaskSignatureCheck, _ bytes: [UInt8], _ asc: [UInt8], ssh: [UInt8]? = nil) throws(TaskTrustRefusal) -> TaskAuthentication {
        guard case .success(let task) = TaskParser.parse(bytes) else { fatalError("test task does not parse") }
        return try check.check(task: task, bytes: bytes, signatures: TaskSignatureFiles(ssh: ssh, openPGP: asc), grid: grid, finished: false)
    }

    func refusal(_ check: TaskSignatureCheck, _ bytes: [UInt8], _ asc: [UInt8]) -> String {
        do {
            let auth = try run(check, bytes, asc)
            return "accepted: \(auth)"
        } catch {
            return "\(error)"
        }
    }

    @Test func aSignatureByAKeyInTheHostsKeyringNamesItsEmail() throws {
        let check = try checker(["alice@example.com"])
        let bytes = taskBytes()
        let auth = try run(check, bytes, try sign(bytes, by: "alice@example.com"))
        #expect(auth.principals == ["alice@example.com"] && auth.fingerprints.first?.hasPrefix("OPENPGP:") == true, "\(auth)")
    }

    @Test func badInputIsRefusedWithTheReason() throws {
        let check = try checker(["alice@example.com", "old@example.com", "revoked@example.com"])
        let bytes = taskBytes()
        let good = try sign(bytes, by: "alice@example.com")
        let changed = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "echo hi", with: "echo hj").utf8)
        #expect(refusal(check, changed, good).contains("does not match the file's bytes"))
        #expect(refusal(check, taskBytes("t2"), good).contains("does not match the file's bytes"), "another task's signature")
        #expect(refusal(check, bytes, try sign(bytes, by: "mallory@example.com")).contains("a key not in this host's openpgp.gpg"))
        #expect(refusal(check, bytes, Array("-----BEGIN PGP SIGNATURE-----\n\ngarbage\n-----END PGP SIGNATURE-----\n".utf8)).contains("OpenPGP signature refused"))
        #expect(refusal(check, bytes, Array(good.prefix(good.count / 2))).contains("OpenPGP signature refused"), "truncated")
        #expect(refusal(check, bytes, try sign(bytes, by: "alice@example.com", extra: ["--digest-algo", "SHA1"])).contains("weak hash"))
        let old = try sign(bytes, by: "old@example.com", extra: ["--faked-system-time", "20200101T010000"])
        #expect(refusal(check, bytes, old).contains("key has expired"), "\(refusal(check, bytes, old))")
        // Revoked: the revocation GnuPG made at key creation, imported, and the key exported again.
        let signedBeforeRevocation = try sign(bytes, by: "revoked@example.com")
        let fingerprint = try gpg(["--with-colons", "--list-keys", "revoked@example.com"]).split(separator: "\n")
            .first { $0.hasPrefix("fpr:") }.map { String($0.split(separator: ":", omittingEmptySubsequences: false)[9]) } ?? ""
        let certificate = try String(contentsOfFile: gnupg + "/openpgp-revocs.d/\(fingerprint).rev", encoding: .utf8)
            .replacingOccurrences(of: ":-----BEGIN", with: "-----BEGIN")
        let revocation = dir.appendingPathComponent("revoke.asc").path
        try certificate.write(toFile: revocation, atomically: true, encoding: .utf8)
        try gpg(["--import", revocation])
        let after = try checker(["alice@example.com", "revoked@example.com"])
        #expect(refusal(after, bytes, signedBeforeRevocation).contains("revoked"), "\(refusal(after, bytes, signedBeforeRevocation))")
        // A host without a keyring does not trust OpenPGP signatures at all.
        let none = TaskSignatureCheck(trust: HostTrust(store: TrustStore(allowedSigners: AllowedSigners(entries: []))))
        #expect(refusal(none, bytes, good).contains("no OpenPGP keyring"))
    }

    @Test func sshAndOpenPGPSignersCountTogetherForMinSigners() throws {
        let key = dir.appendingPathComponent("bob").path
        try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bob", "-f", key])
        let exported = dir.appendingPathComponent("alice.gpg").path
        try gpg(["--output", exported, "--export", "alice@example.com"])
        let store = TrustStore(allowedSigners: try AllowedSigners.parse("bob@example.com " + (try String(contentsOfFile: key + ".pub", encoding: .utf8))))
        let check = TaskSignatureCheck(trust: HostTrust(store: store, policy: TrustPolicy(minSigners: 2),
                                                        openPGPKeyring: OpenPGPKeyring(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: exported))), path: exported)))
        let bytes = taskBytes()
        let file = dir.appendingPathComponent("two.json")
        try Data(bytes).write(to: file)
        try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", key, "-n", "dgrid-task", file.path])
        let ssh = Array(try Data(contentsOf: URL(fileURLWithPath: file.path + ".sig")))
        let auth = try run(check, bytes, try sign(bytes, by: "alice@example.com"), ssh: ssh)
        #expect(auth.principals == ["bob@example.com", "alice@example.com"], "\(auth)")
    }
}
