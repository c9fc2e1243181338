import Foundation
import Testing
import TestSupport
@testable import Trust

/// OpenSSH's own `ssh-keygen -Y sign` makes the signatures; dgrid verifies them
/// in-process (docs/ARCHITECTURE.md §9). Real ssh-keygen, no root.
@Suite(.system, .serialized)
struct SSHSignatureInteropTests {
    let task = Array(#"{"task_id":"t1","script":"echo hi","timeout_seconds":30}"#.utf8)

    private func keygen(_ dir: URL, name: String, options: [String] = ["-t", "ed25519"]) throws -> URL {
        let key = dir.appendingPathComponent(name)
        try Shell.check(["ssh-keygen", "-q"] + options + ["-N", "", "-C", "\(name)@test", "-f", key.path])
        return key
    }

    /// Signs `bytes` as a file with ssh-keygen; returns the .sig file's bytes.
    private func sign(_ bytes: [UInt8], key: URL, namespace: String = "dgrid-task", options: [String] = [],
                      in dir: URL) throws -> [UInt8] {
        let file = dir.appendingPathComponent("task-\(UUID().uuidString.prefix(6)).json")
        try Data(bytes).write(to: file)
        try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", key.path, "-n", namespace] + options + [file.path])
        return Array(try Data(contentsOf: URL(fileURLWithPath: file.path + ".sig")))
    }

    /// ssh-keygen's -t and -b for each key type dgrid verifies.
    static let keyTypes: [(String, [String])] = [
        ("ed25519", ["-t", "ed25519"]), ("ecdsa-p256", ["-t", "ecdsa", "-b", "256"]), ("rsa-3072", ["-t", "rsa", "-b", "3072"]),
    ]

    @Test(arguments: keyTypes.map(\.0))
    func aSignatureFromSSHKeygenVerifiesAndNamesItsKey(_ type: String) throws {
        let dir = try TempDir.make(prefix: "dgrid-sshsig")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try keygen(dir, name: "alice", options: Self.keyTypes.first { $0.0 == type }!.1)
        for options in [[], ["-O", "hashalg=sha256"], ["-O", "hashalg=sha512"]] {
            let signature = try SSHSignature(armored: try sign(task, key: key, options: options, in: dir))
            let signer = try signature.verify(task, namespace: "dgrid-task")
            let line = try String(contentsOf: URL(fileURLWithPath: key.path + ".pub"), encoding: .utf8)
            #expect(signer == (try SSHPublicKey(line: line)), "\(options)")
            // The same fingerprint OpenSSH prints.
            let listed = try Shell.run(["ssh-keygen", "-l", "-E", "sha256", "-f", key.path + ".pub"]).stdout
            #expect(listed.split(separator: " ").dropFirst().first.map(String.init) == signer.fingerprint, "\(listed)")
            var changed = task
            changed[0] ^= 0x20
            #expect(throws: SignatureRefusal.badSignature) { _ = try signature.verify(changed, namespace: "dgrid-task") }
        }
    }

    @Test func aChangedByteAnotherFilesSignatureAndAnotherNamespaceAreRefused() throws {
        let dir = try TempDir.make(prefix: "dgrid-sshsig")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try keygen(dir, name: "alice")
        let signature = try SSHSignature(armored: try sign(task, key: key, in: dir))
        var changed = task
        changed[changed.count - 2] ^= 0x01
        #expect(throws: SignatureRefusal.badSignature) { _ = try signature.verify(changed, namespace: "dgrid-task") }

        let other = Array(#"{"task_id":"t2","script":"rm -rf /","timeout_seconds":30}"#.utf8)
        let otherSignature = try SSHSignature(armored: try sign(other, key: key, in: dir))
        #expect(throws: SignatureRefusal.badSignature) { _ = try otherSignature.verify(task, namespace: "dgrid-task") }

        let forFiles = try SSHSignature(armored: try sign(task, key: key, namespace: "file", in: dir))
        #expect(throws: SignatureRefusal.wrongNamespace(expected: "dgrid-task", found: "file")) {
            _ = try forFiles.verify(task, namespace: "dgrid-task")
        }
        // The refusal tells the user how to sign.
        #expect("\(SignatureRefusal.wrongNamespace(expected: "dgrid-task", found: "file"))".contains("ssh-keygen -Y sign -n dgrid-task"))
    }

    /// dgrid's verdict on an allowed_signers file is ssh-keygen -Y verify's.
    @Test func allowedSignersVerdictsAgreeWithSSHKeygen() throws {
        let dir = try TempDir.make(prefix: "dgrid-sshsig")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try keygen(dir, name: "alice")
        let other = try keygen(dir, name: "mallory")
        let file = dir.appendingPathComponent("task.json")
        try Data(task).write(to: file)
        try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", key.path, "-n", "dgrid-task", file.path])
        let sigBytes = Array(try Data(contentsOf: URL(fileURLWithPath: file.path + ".sig")))
        let signer = try SSHSignature(armored: sigBytes).verify(task, namespace: "dgrid-task")
        let alicePub = try String(contentsOf: URL(fileURLWithPath: key.path + ".pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let malloryPub = try String(contentsOf: URL(fileURLWithPath: other.path + ".pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let variants = [
            "alice@example.com \(alicePub)",
            "alice@example.com namespaces=\"file,git\" \(alicePub)",
            "alice@example.com namespaces=\"dgrid-*\" \(alicePub)",
            "alice@example.com valid-before=\"20200101Z\" \(alicePub)",
            "alice@example.com valid-after=\"20990101Z\" \(alicePub)",
            "alice@example.com valid-after=\"20200101Z\",valid-before=\"20990101Z\" \(alicePub)",
            "alice@example.com \(malloryPub)",
        ]
        for line in variants {
            let allowed = dir.appendingPathComponent("allowed_signers")
            try (line + "\n").write(to: allowed, atomically: false, encoding: .utf8)
            let theirs = try ProcessRunner.run("/bin/sh", ["-c", "ssh-keygen -Y verify -f '\(allowed.path)' -I alice@example.com -n dgrid-task -s '\(file.path).sig' < '\(file.path)'"])
            let ours = (try? AllowedSigners.parse(line).signer(for: signer, namespace: "dgrid-task", at: Int64(time(nil)))) != nil
            #expect(ours == (theirs.status == 0), "\(line): ssh-keygen said \(theirs.status) \(theirs.stdout)\(theirs.stderr)")
        }
    }

    @Test func weakAndUnsupportedKeysAreRefusedByName() throws {
        let dir = try TempDir.make(prefix: "dgrid-sshsig")
        defer { try? FileManager.default.removeItem(at: dir) }
        let short = try keygen(dir, name: "bob", options: ["-t", "rsa", "-b", "1024"])
        #expect(throws: SignatureRefusal.weakKey("an RSA modulus of 1024 bits (at least 2048)")) {
            _ = try SSHSignature(armored: try sign(task, key: short, in: dir))
        }
        let p384 = try keygen(dir, name: "carol", options: ["-t", "ecdsa", "-b", "384"])
        #expect(throws: SignatureRefusal.unsupportedAlgorithm("ecdsa-sha2-nistp384")) {
            _ = try SSHSignature(armored: try sign(task, key: p384, in: dir))
        }
    }
}

/// What anyone who can push may put in a `.sig` file: each is refused with a
/// reason, never a crash or an out-of-bounds read.
@Suite(.unit)
struct SSHSignatureHostileInputTests {
    static func armor(_ blob: [UInt8]) -> [UInt8] {
        Array("-----BEGIN SSH SIGNATURE-----\n\(Data(blob).base64EncodedString())\n-----END SSH SIGNATURE-----\n".utf8)
    }

    static func blob(magic: String = "SSHSIG", version: UInt32 = 1, key: [UInt8]? = nil, namespace: String = "dgrid-task",
                     hash: String = "sha512", signature: [UInt8]? = nil, trailing: [UInt8] = []) -> [UInt8] {
        var keyWriter = SSHWireWriter()
        keyWriter.string(Array("ssh-ed25519".utf8))
        keyWriter.string([UInt8](repeating: 7, count: 32))
        var sigWriter = SSHWireWriter()
        sigWriter.string(Array("ssh-ed25519".utf8))
        sigWriter.string([UInt8](repeating: 9, count: 64))
        var w = SSHWireWriter()
        w.raw(Array(magic.utf8))
        w.uint32(version)
        w.string(key ?? keyWriter.bytes)
        w.string(Array(namespace.utf8))
        w.string([])
        w.string(Array(hash.utf8))
        w.string(signature ?? sigWriter.bytes)
        w.raw(trailing)
        return w.bytes
    }

    static let cases: [(String, [UInt8])] = [
        ("empty file", []),
        ("no armor", Array("hello".utf8)),
        ("armor with no body", Array("-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n".utf8)),
        ("body not base64", Array("-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n".utf8)),
        ("wrong magic", armor(blob(magic: "SSHSIX"))),
        ("version 2", armor(blob(version: 2))),
        ("truncated", armor(Array(blob().prefix(40)))),
        ("a length of 4 GiB", armor(Array("SSHSIG".utf8) + [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])),
        ("trailing bytes", armor(blob(trailing: [1, 2, 3]))),
        ("short key", armor(blob(key: [0, 0, 0, 11] + Array("ssh-ed25519".utf8) + [0, 0, 0, 3, 1, 2, 3]))),
        ("short signature", armor(blob(signature: [0, 0, 0, 11] + Array("ssh-ed25519".utf8) + [0, 0, 0, 2, 1, 2]))),
        ("control bytes in the namespace", armor(blob(namespace: "dgrid\u{1b}[2J"))),
        ("oversized file", [UInt8](repeating: 0x41, count: SSHSignature.maxFileBytes + 1)),
    ]

    @Test(arguments: cases.map(\.0))
    func refusedAsMalformed(_ name: String) throws {
        let bytes = try #require(Self.cases.first { $0.0 == name }?.1)
        do {
            let signature = try SSHSignature(armored: bytes)
            _ = try signature.verify(Array("{}".utf8), namespace: "dgrid-task")
            Issue.record("\(name) was accepted")
        } catch {
            guard case .malformed = error else { Issue.record("\(name): \(error)"); return }
        }
    }

    @Test func unknownHashAndKeyAlgorithmsAreNamed() throws {
        #expect(throws: SignatureRefusal.unsupportedAlgorithm("hash md5")) { _ = try SSHSignature(armored: Self.armor(Self.blob(hash: "md5"))) }
        var key = SSHWireWriter()
        key.string(Array("ssh-dss".utf8))
        key.string([1, 2, 3])
        #expect(throws: SignatureRefusal.unsupportedAlgorithm("ssh-dss")) { _ = try SSHSignature(armored: Self.armor(Self.blob(key: key.bytes))) }
    }

    @Test func aWellFormedSignatureWithWrongBytesIsABadSignature() throws {
        let signature = try SSHSignature(armored: Self.armor(Self.blob()))
        #expect(throws: SignatureRefusal.badSignature) { _ = try signature.verify(Array("{}".utf8), namespace: "dgrid-task") }
    }

    /// A certificate inside the signature is a writer's bytes too: every field bounded.
    @Test func hostileCertificatesAreRefusedAsMalformed() throws {
        func certificate(truncatedTo length: Int? = nil, principals: Int = 1, trailing: [UInt8] = []) -> [UInt8] {
            var w = SSHWireWriter()
            w.string(Array("ssh-ed25519-cert-v01@openssh.com".utf8))
            w.string([UInt8](repeating: 1, count: 32))  // nonce
            w.string([UInt8](repeating: 7, count: 32))  // key
            w.raw([0, 0, 0, 0, 0, 0, 0, 1])  // serial
            w.uint32(1)
            w.string(Array("id".utf8))
            var names = SSHWireWriter()
            for _ in 0..<principals { names.string(Array("a".utf8)) }
            w.string(names.bytes)
            w.raw([UInt8](repeating: 0, count: 8))
            w.raw([UInt8](repeating: 0xff, count: 8))
            w.string([])
            w.string([])
            w.string([])
            var ca = SSHWireWriter()
            ca.string(Array("ssh-ed25519".utf8))
            ca.string([UInt8](repeating: 9, count: 32))
            w.string(ca.bytes)
            var sig = SSHWireWriter()
            sig.string(Array("ssh-ed25519".utf8))
            sig.string([UInt8](repeating: 3, count: 64))
            w.string(sig.bytes)
            w.raw(trailing)
            return length.map { Array(w.bytes.prefix($0)) } ?? w.bytes
        }
        #expect(try SSHPublicKey(blob: certificate()).certificate?.principals == ["a"])
        for length in [40, 80, 120, certificate().count - 1] {
            #expect(throws: SignatureRefusal.self, "\(length)") { _ = try SSHPublicKey(blob: certificate(truncatedTo: length)) }
        }
        #expect(throws: SignatureRefusal.malformed("a certificate naming more than 256 principals")) {
            _ = try SSHPublicKey(blob: certificate(principals: 300))
        }
        #expect(throws: SignatureRefusal.malformed("bytes after the certificate's signature")) {
            _ = try SSHPublicKey(blob: certificate(trailing: [0]))
        }
    }
}
