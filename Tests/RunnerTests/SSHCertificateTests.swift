import Foundation
import Testing
import TestSupport
@testable import Trust

/// `cert-authority` in the host's allowed_signers (docs/ARCHITECTURE.md §9): an SSH CA
/// made with the real `ssh-keygen -s` certifies a user key; the user signs with
/// `ssh-keygen -Y sign -f KEY-cert.pub`; dgrid's verdict on each certificate
/// is `ssh-keygen -Y verify`'s, and names the certificate's principal.
@Suite(.system, .serialized)
struct SSHCertificateTests {
    let task = Array(#"{"task_id":"t1","script":"echo hi","timeout_seconds":30}"#.utf8)
    let dir: URL

    init() throws {
        dir = try TempDir.make(prefix: "dgrid-sshcert")
    }

    private func keygen(_ name: String, _ options: [String] = ["-t", "ed25519"]) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try Shell.check(["ssh-keygen", "-q"] + options + ["-N", "", "-C", name, "-f", path])
        return path
    }

    /// Certifies `user`'s key with `ca` under `options`; signs the task with the certificate. The `.sig`'s path.
    private func signWithCertificate(user: String, ca: String, _ options: [String]) throws -> String {
        try? FileManager.default.removeItem(atPath: user + "-cert.pub")
        try Shell.check(["ssh-keygen", "-q", "-s", ca, "-I", "alice-key-1"] + options + [user + ".pub"])
        let file = dir.appendingPathComponent("task-\(UUID().uuidString.prefix(6)).json").path
        try Data(task).write(to: URL(fileURLWithPath: file))
        try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", user + "-cert.pub", "-n", "dgrid-task", file])
        return file + ".sig"
    }

    private func publicLine(_ key: String) throws -> String {
        try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// dgrid's verdict and ssh-keygen's on one signature under one allowed_signers line.
    private func verdicts(_ signature: String, line: String, revoked: String = "") throws -> (ours: Result<String, SignerRefusal>, theirs: Bool) {
        let allowed = dir.appendingPathComponent("allowed_signers").path
        try (line + "\n").write(toFile: allowed, atomically: false, encoding: .utf8)
        let file = String(signature.dropLast(4))
        let theirs = try ProcessRunner.run("/bin/sh", ["-c", "ssh-keygen -Y verify -f '\(allowed)' -I alice@example.com -n dgrid-task -s '\(signature)' < '\(file)'"])
        let key = try SSHSignature(armored: Array(try Data(contentsOf: URL(fileURLWithPath: signature)))).verify(task, namespace: "dgrid-task")
        let signers = try AllowedSigners.parse(line), revokedKeys = try RevokedKeys.parse(revoked)
        let ours = Result { () throws(SignerRefusal) -> String in
            try signers.signer(for: key, namespace: "dgrid-task", at: Int64(time(nil)), revoked: revokedKeys).principal
        }
        return (ours, theirs.status == 0)
    }

    @Test(arguments: [("ed25519", ["-t", "ed25519"]), ("ecdsa-p256", ["-t", "ecdsa", "-b", "256"])])
    func certificatesAreJudgedAsSSHKeygenJudgesThem(_ type: String, _ userOptions: [String]) throws {
        let ca = try keygen("ca", ["-t", "rsa", "-b", "3072"]), otherCA = try keygen("other-ca")
        let user = try keygen("alice-\(type)", userOptions)
        let trusted = "*@example.com cert-authority,namespaces=\"dgrid-task\" \(try publicLine(ca))"
        let valid = ["-n", "alice@example.com,al", "-V", "-5m:+1h"]
        let good = try signWithCertificate(user: user, ca: ca, valid)
        let cases: [(String, String, String, String?)] = [
            // (what, .sig, allowed_signers line, expected refusal text; nil: accepted)
            ("a valid certificate", good, trusted, nil),
            ("a CA line for another namespace", good, "*@example.com cert-authority,namespaces=\"git\" \(try publicLine(ca))", "not allowed to sign for namespace"),
            ("another CA", good, "*@example.com cert-authority \(try publicLine(otherCA))", "which no cert-authority line"),
            ("a principal the line does not name", good, "*@other.org cert-authority \(try publicLine(ca))", "none of its principals"),
            ("the CA's key as a plain line", good, "alice@example.com \(try publicLine(ca))", "which no cert-authority line"),
            ("the certified key as a plain line", good, "alice@example.com \(try publicLine(user))", "which no cert-authority line"),
            ("an expired certificate", try signWithCertificate(user: user, ca: ca, ["-n", "alice@example.com", "-V", "20200101:20200102"]), trusted, "expired at 2020-01-02"),
            ("a certificate valid only later", try signWithCertificate(user: user, ca: ca, ["-n", "alice@example.com", "-V", "20990101:20990102"]), trusted, "valid only from 2099-01-01"),
            ("a host certificate", try signWithCertificate(user: user, ca: ca, ["-h", "-n", "alice@example.com", "-V", "-5m:+1h"]), trusted, "a host certificate"),
        ]
        for (what, signature, line, refusal) in cases {
            let (ours, theirs) = try verdicts(signature, line: line)
            switch ours {
            case .success(let principal):
                #expect(refusal == nil, "\(what): accepted as \(principal)")
                #expect(principal == "alice@example.com", "\(what): \(principal)")
            case .failure(let error):
                #expect(refusal.map { "\(error)".contains($0) } ?? false, "\(what): \(error)")
            }
            #expect(theirs == (refusal == nil), "\(what): ssh-keygen disagrees")
        }
        // A revoked CA revokes every certificate it signed; a revoked user key, its certificate.
        for revoked in [try publicLine(ca), try publicLine(user)] {
            let (ours, _) = try verdicts(good, line: trusted, revoked: revoked)
            guard case .failure(.revoked) = ours else { Issue.record("not revoked: \(ours)"); continue }
        }
        // Stricter than ssh-keygen: a critical option (force-command, source-address) is something a
        // task signature cannot honour, so the certificate is refused rather than its limit ignored.
        let forced = try signWithCertificate(user: user, ca: ca, valid + ["-O", "force-command=/bin/true"])
        let (ours, _) = try verdicts(forced, line: trusted)
        guard case .failure(let error) = ours else { Issue.record("accepted with a critical option"); return }
        #expect("\(error)".contains("critical option \"force-command\""), "\(error)")
    }

    @Test func aCertificateWhoseCASignatureWasTamperedWithIsRefused() throws {
        let ca = try keygen("ca"), user = try keygen("alice")
        let signature = try signWithCertificate(user: user, ca: ca, ["-n", "alice@example.com", "-V", "-5m:+1h"])
        let key = try SSHSignature(armored: Array(try Data(contentsOf: URL(fileURLWithPath: signature)))).verify(task, namespace: "dgrid-task")
        let certificate = try #require(key.certificate)
        // The certificate's own fields, changed after the CA signed them (a principal renamed).
        var blob = key.blob
        let name = Array("alice@example.com".utf8)
        let at = try #require((0...(blob.count - name.count)).first { Array(blob[$0..<($0 + name.count)]) == name })
        blob[at] = UInt8(ascii: "m")
        let forged = try SSHPublicKey(blob: blob)
        #expect(forged.certificate?.principals == ["mlice@example.com"] && certificate.principals == ["alice@example.com"])
        let line = "*@example.com cert-authority \(try publicLine(ca))"
        #expect(throws: SignerRefusal.self) {
            _ = try AllowedSigners.parse(line).signer(for: forged, namespace: "dgrid-task", at: Int64(time(nil)))
        }
        do {
            _ = try AllowedSigners.parse(line).signer(for: forged, namespace: "dgrid-task", at: Int64(time(nil)))
        } catch {
            #expect("\(error)".contains("its CA signature does not hold"), "\(error)")
        }
        // The fingerprint is the certified key's, as OpenSSH prints it.
        let listed = try Shell.run(["ssh-keygen", "-l", "-E", "sha256", "-f", user + ".pub"]).stdout
        #expect(listed.split(separator: " ").dropFirst().first.map(String.init) == key.fingerprint, "\(listed)")
    }
}
