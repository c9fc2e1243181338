import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxSupport
@testable import Trust

/// The host's allowed_signers as OpenSSH defines it (ssh-keygen(1), ALLOWED
/// SIGNERS), its revocation list, and the files' permission rules.
@Suite(.unit)
struct AllowedSignersTests {
    // Ed25519 keys made once with ssh-keygen; only their blobs matter here.
    static let alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMP0V1Sxu9/i8EOkXJfVsFWQjJwwoFnP2sYcVot6fgWp"
    static let bob = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP0S+oY7p+PAn3jn42OpBSIq8jglI4rhP/cONHQNfFXg"

    static func key(_ line: String) throws -> SSHPublicKey { try SSHPublicKey(line: line) }

    @Test func entriesParseWithOptionsQuotesAndComments() throws {
        let text = """
        # comment
        alice@example.com,alice \(Self.alice) alice's laptop

        bob@example.com namespaces="dgrid-task,file",valid-after="20260101",VALID-BEFORE="20261231235959Z" \(Self.bob)
        *@example.com cert-authority \(Self.bob)
        """
        let signers = try AllowedSigners.parse(text)
        #expect(signers.entries.count == 3)
        let (a, b, ca) = (signers.entries[0], signers.entries[1], signers.entries[2])
        #expect(a.principal == "alice@example.com" && a.line == 2 && a.namespaces == nil && !a.isCertificateAuthority)
        #expect(b.namespaces == "dgrid-task,file" && b.validBefore == 1_798_761_599 && b.validAfter != nil && b.line == 4)
        #expect(ca.isCertificateAuthority && ca.principals == "*@example.com")
    }

    @Test(arguments: [
        ("alice", "expected \"principals [options] keytype key\""),
        ("alice bogus=\"1\" \(alice)", "unknown option bogus"),
        ("alice valid-before=\"2026\" \(alice)", "valid-before wants"),
        ("alice valid-before=20260101 \(alice)", "option values go in double quotes"),
        ("alice namespaces=\"x \(alice)", "an unterminated quote"),
        ("alice ssh-ed25519 !!notbase64", "not base64"),
        ("alice ssh-rsa \(alice.split(separator: " ")[1])", "labelled ssh-rsa but holds ssh-ed25519"),
        ("alice cert-authority=\"yes\" \(alice)", "cert-authority takes no value"),
        ("alice valid-after=\"20300101Z\" namespaces=\"file\" \(alice)", "options are one comma-separated field"),
    ])
    func badLinesAreRefusedWithTheirNumber(_ line: String, _ reason: String) throws {
        let text = "# first\n\(line)\n"
        do {
            _ = try AllowedSigners.parse(text, source: "trust/allowed_signers")
            Issue.record("accepted: \(line)")
        } catch {
            #expect(error.line == 2 && "\(error)".hasPrefix("trust/allowed_signers:2: ") && "\(error)".contains(reason), "\(error)")
        }
    }

    @Test func keyTypesDgridDoesNotVerifyAreSkippedNotFatal() throws {
        let signers = try AllowedSigners.parse("carol ssh-dss AAAAB3NzaC1kc3MAAACBAP\nalice \(Self.alice)\n")
        #expect(signers.entries.map(\.principal) == ["alice"])
        #expect(signers.skipped.map(\.line) == [1])
    }

    @Test func theSignerIsTheFirstEntryWhoseKeyNamespaceAndWindowHold() throws {
        let signers = try AllowedSigners.parse("""
        old@example.com valid-before="20250101Z" \(Self.alice)
        alice@example.com namespaces="dgrid-*" \(Self.alice)
        ca@example.com cert-authority \(Self.bob)
        """)
        let alice = try Self.key(Self.alice), bob = try Self.key(Self.bob)
        let now: Int64 = 1_780_000_000 // 2026
        #expect(try signers.signer(for: alice, namespace: "dgrid-task", at: now).principal == "alice@example.com")
        #expect(try signers.signer(for: alice, namespace: "dgrid-task", at: 1_700_000_000).principal == "old@example.com")
        #expect(throws: SignerRefusal.expired(principal: "old@example.com", validBefore: 1_735_689_600)) {
            _ = try signers.signer(for: alice, namespace: "file", at: now)
        }
        // A CA's key does not sign as a person.
        #expect(throws: SignerRefusal.unknownKey(fingerprint: bob.fingerprint)) {
            _ = try signers.signer(for: bob, namespace: "dgrid-task", at: now)
        }
        #expect(throws: SignerRefusal.revoked(fingerprint: alice.fingerprint)) {
            _ = try signers.signer(for: alice, namespace: "dgrid-task", at: now, revoked: RevokedKeys([alice]))
        }
        let windowed = try AllowedSigners.parse("alice valid-after=\"20300101Z\",namespaces=\"file\" \(Self.alice)")
        #expect(throws: SignerRefusal.namespaceNotAllowed(principal: "alice", namespace: "dgrid-task")) {
            _ = try windowed.signer(for: alice, namespace: "dgrid-task", at: now)
        }
        #expect(throws: SignerRefusal.notYetValid(principal: "alice", validAfter: 1_893_456_000)) {
            _ = try windowed.signer(for: alice, namespace: "file", at: now)
        }
    }

    @Test func patternListsMatchAsOpenSSHDoes() {
        #expect(SSHPattern.matchesList("dgrid-*,file", "dgrid-task"))
        #expect(SSHPattern.matchesList("*,!git", "file") && !SSHPattern.matchesList("*,!git", "git"))
        #expect(!SSHPattern.matchesList("dgrid-?", "dgrid-task") && SSHPattern.matchesList("dgrid-????", "dgrid-task"))
        // Linear on a hostile pattern.
        let hostile = String(repeating: "*a", count: 40) + "b"
        #expect(!SSHPattern.matches(Array(hostile.utf8), Array(String(repeating: "a", count: 5000).utf8)))
    }

    @Test func revokedKeysListParsesAndNamesBadLines() throws {
        let revoked = try RevokedKeys.parse("# revoked 2026-03\n\(Self.alice) stolen laptop\n")
        let alice = try Self.key(Self.alice), bob = try Self.key(Self.bob)
        #expect(revoked.contains(alice) && !revoked.contains(bob))
        #expect(throws: TrustFileError.self) { _ = try RevokedKeys.parse("ssh-ed25519 ###\n") }
    }

    @Test func trustFilesMustBeThisUsersAndClosedToOthers() throws {
        let home = try TempDir.make(prefix: "dgrid-trust")
        defer { try? FileManager.default.removeItem(at: home) }
        chmod(home.path, 0o700)
        let state = StateDirectory(path: home.path)
        // No trust directory: nobody trusted, nothing revoked.
        #expect(try TrustStore.load(state: state).allowedSigners.entries.isEmpty)

        let trust = try state.directory(TrustStore.directoryName)
        let signers = trust + "/" + TrustStore.allowedSignersName
        try "alice \(Self.alice)\n".write(toFile: signers, atomically: false, encoding: .utf8)
        chmod(signers, 0o644)
        #expect(try TrustStore.load(state: state).allowedSigners.entries.map(\.principal) == ["alice"])

        chmod(signers, 0o664)
        #expect(throws: TrustFileError(file: signers, problem: .permissions("is writable by group or others (mode 664)"))) {
            _ = try TrustStore.load(state: state)
        }
        chmod(signers, 0o644)
        let revoked = trust + "/" + TrustStore.revokedKeysName
        try FileManager.default.createSymbolicLink(atPath: revoked, withDestinationPath: signers)
        #expect(throws: TrustFileError(file: revoked, problem: .permissions("is a symlink"))) { _ = try TrustStore.load(state: state) }
        try FileManager.default.removeItem(atPath: revoked)
        chmod(trust, 0o777)
        #expect(throws: TrustFileError.self) { _ = try TrustStore.load(state: state) }
        chmod(trust, 0o700)
        #expect(try TrustStore.load(state: state).revokedKeys.count == 0)
    }
}
