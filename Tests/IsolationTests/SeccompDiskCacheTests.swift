import CSeccomp
import CShims
import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// The compiled default filter cached under the state directory is read back
/// into every sandbox: a file dgrid did not write must never be the filter a
/// task runs under. Each tampered file is passed over and the real filter
/// recompiled, proven by calls it refuses inside a sandbox.
@Suite(.system, .serialized) struct SeccompDiskCacheTests {
    /// One `ret SECCOMP_RET_ALLOW`: the filter an attacker would like cached.
    static let allowEverything = [sock_filter(code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000)]

    struct Cache {
        let state: StateDirectory
        let directory: String
        let file: String
        let base: String

        /// A fresh state directory with the default filter compiled and cached.
        init() throws {
            base = try TempDir.make(prefix: "dgrid-seccomp-cache").path
            state = StateDirectory(path: base + "/home")
            _ = try DefaultSeccomp.filter(state: state)
            directory = base + "/home/cache/seccomp"
            let key = SeccompDiskCache.key(profileBytes: DefaultSeccomp.embeddedProfile, strict: true)
            file = directory + "/\(key.hex).bpf"
        }

        func remove() { try? FileManager.default.removeItem(atPath: base) }

        /// Replaces the cached file with `bytes`, mode 0600 and ours unless told otherwise.
        func replace(with bytes: [UInt8], mode: mode_t = 0o600, owner: uid_t? = nil) throws {
            unlink(file)
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            #expect(chmod(file, mode) == 0)
            if let owner { #expect(chown(file, owner, owner) == 0) }
        }

        func bytes() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: file))) }

        /// What an attacker holding the secret could write: a valid MAC over `program`.
        func forged(_ program: [sock_filter]) throws -> [UInt8] {
            let secret = SeccompCacheSecret(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/secret"))))
            let label = Array(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent.utf8)
            let body = program.withUnsafeBytes { Array($0) }
            return secret.mac(label, body) + body
        }
    }

    static func instructionBytes(_ filter: SeccompFilter) -> [UInt8] {
        filter.instructions.withUnsafeBytes { Array($0) }
    }

    static var realFilter: [UInt8] {
        get throws {
            let profile = try SeccompProfile.parse(Data(DefaultSeccomp.embeddedProfile))
            return instructionBytes(try SeccompCompiler.compile(profile, strict: true).filter)
        }
    }

    /// Runs the syscall probe under `filter`; keyctl and unshare(CLONE_NEWUSER)
    /// work for uid 0 without capabilities, so only the filter refuses them.
    static func refusedInASandbox(_ filter: SeccompFilter) throws -> Bool {
        var spec = try Fixture.shell("/probes/syscalls")
        spec.command = ["/probes/syscalls"]
        spec.user = UserID(uid: 0, gid: 0)
        spec.seccomp = filter
        let o = try Fixture.runner.run(spec)
        let lines = Set(o.stdout.text.split(separator: "\n").map(String.init))
        return lines.contains("keyctl=\(EPERM)") && lines.contains("unshare_user=\(EPERM)")
    }

    @Test func theCacheIsWrittenPrivateAndReadBack() throws {
        let cache = try Cache()
        defer { cache.remove() }
        for path in [cache.file, cache.directory + "/secret"] {
            var info = stat()
            #expect(lstat(path, &info) == 0 && info.st_mode & 0o7777 == 0o600 && info.st_uid == geteuid(), "\(path)")
        }
        // Authentic: a file carrying a valid MAC is what comes back (so the
        // refusals below are the checks at work, not a cache that never hits).
        try cache.replace(with: try cache.forged(Self.allowEverything))
        #expect(try DefaultSeccomp.filter(state: cache.state).instructions.count == 1)
    }

    @Test func aFilterThatAllowsEverythingIsNotUsed() throws {
        let cache = try Cache()
        defer { cache.remove() }
        try cache.replace(with: Self.allowEverything.withUnsafeBytes { Array($0) })

        let filter = try DefaultSeccomp.filter(state: cache.state)
        #expect(Self.instructionBytes(filter) == (try Self.realFilter))
        #expect(try Self.refusedInASandbox(filter))
        // And the real program was written back over it.
        #expect(Array(try cache.bytes().dropFirst(SeccompCacheSecret.macByteCount)) == (try Self.realFilter))
    }

    @Test func flippedBytesAreNotUsed() throws {
        let cache = try Cache()
        defer { cache.remove() }
        var bytes = try cache.bytes()
        // Every byte of the last instruction (the default action's return) flipped.
        for index in (bytes.count - 8)..<bytes.count { bytes[index] ^= 0xff }
        try cache.replace(with: bytes)

        let filter = try DefaultSeccomp.filter(state: cache.state)
        #expect(Self.instructionBytes(filter) == (try Self.realFilter))
        #expect(try Self.refusedInASandbox(filter))
    }

    /// A valid MAC is not enough: the file must also be as dgrid writes it.
    @Test(.enabled(if: geteuid() == 0, "needs root to chown"), arguments: ["other owner", "mode 0644", "hard link"])
    func anAuthenticFileInTheWrongShapeIsNotUsed(shape: String) throws {
        let cache = try Cache()
        defer { cache.remove() }
        let forged = try cache.forged(Self.allowEverything)
        switch shape {
        case "other owner": try cache.replace(with: forged, owner: 65534)
        case "mode 0644": try cache.replace(with: forged, mode: 0o644)
        default:
            try cache.replace(with: forged)
            #expect(link(cache.file, cache.base + "/second-name") == 0)
        }
        let filter = try DefaultSeccomp.filter(state: cache.state)
        #expect(Self.instructionBytes(filter) == (try Self.realFilter), "\(shape)")
    }

    @Test func aFIFOInPlaceOfTheFileDoesNotHangTheStart() throws {
        let cache = try Cache()
        defer { cache.remove() }
        unlink(cache.file)
        #expect(mkfifo(cache.file, 0o600) == 0)
        #expect(Self.instructionBytes(try DefaultSeccomp.filter(state: cache.state)) == (try Self.realFilter))
    }

    /// A secret others could read is no secret: replaced, and what was cached
    /// under it (here a forgery made with it) is recompiled.
    @Test func aSecretReadableByOthersIsReplaced() throws {
        let cache = try Cache()
        defer { cache.remove() }
        let secretPath = cache.directory + "/secret"
        let old = try Data(contentsOf: URL(fileURLWithPath: secretPath))
        try cache.replace(with: try cache.forged(Self.allowEverything))
        #expect(chmod(secretPath, 0o644) == 0)

        #expect(Self.instructionBytes(try DefaultSeccomp.filter(state: cache.state)) == (try Self.realFilter))
        var info = stat()
        #expect(lstat(secretPath, &info) == 0 && info.st_mode & 0o7777 == 0o600)
        #expect(try Data(contentsOf: URL(fileURLWithPath: secretPath)) != old)
    }

    /// The key names the architecture the program is compiled for: a state
    /// directory shared by an x86_64 and an arm64 host keeps one program each.
    @Test func theKeyNamesTheNativeArchitecture() {
        let bytes = DefaultSeccomp.embeddedProfile
        let native = SeccompDiskCache.key(profileBytes: bytes, strict: true)
        #expect(native == SeccompDiskCache.key(profileBytes: bytes, strict: true, architecture: seccomp_arch_native()))
        let x86Token = seccomp_arch_resolve_name("x86_64"), armToken = seccomp_arch_resolve_name("aarch64")
        let x86 = SeccompDiskCache.key(profileBytes: bytes, strict: true, architecture: x86Token)
        let arm = SeccompDiskCache.key(profileBytes: bytes, strict: true, architecture: armToken)
        #expect(x86 != arm)
        #expect(native == (seccomp_arch_native() == x86Token ? x86 : arm))
    }
}
