import Foundation
import Glibc
import Testing
import TestSupport
@testable import Runner
import Sandbox

/// `dgrid doctor`'s checks that live in Runner (docs/ARCHITECTURE.md §12,
/// "Doctor"), each made to fail and its fix read: disk thresholds (from
/// statvfs figures: a full disk for real is `DoctorCLITests`'s tmpfs), trust
/// files and pins in a real temporary `$DGRID_HOME`, clock evidence and HTTP
/// dates, and the verdict and exit status.
@Suite(.unit) struct DoctorRunnerChecksTests {
    // MARK: disk

    static let gib: UInt64 = 1 << 30

    @Test func diskThresholdsAreStated() {
        let limits = DiskSpaceCheck.Thresholds(slots: 4, outputSize: ByteCount(bytes: 1 << 30))
        #expect(limits.failBytes == Self.gib)
        #expect(limits.warnBytes == 5 * Self.gib, "4 slots × 1 GiB + 1 GiB")
        #expect(DiskSpaceCheck.Thresholds(slots: 1, outputSize: ByteCount(bytes: 1 << 20)).warnBytes == 4 * Self.gib, "never under 4 GiB")
        func usage(_ bytes: UInt64, inodes: UInt64 = 1_000_000, total: UInt64 = 2_000_000) -> DiskSpaceCheck.Usage {
            .init(path: "/srv/dgrid", freeBytes: bytes, totalBytes: 100 * Self.gib, freeInodes: inodes, totalInodes: total)
        }
        let full = DiskSpaceCheck.space(usage(512 << 20), limits)
        #expect(full.status == .fail && full.detail.contains("512 MiB free") && full.fix?.contains("dgrid image gc") == true, "\(full)")
        #expect(DiskSpaceCheck.space(usage(3 * Self.gib), limits).status == .warn)
        #expect(DiskSpaceCheck.space(usage(6 * Self.gib), limits).status == .pass)
        let noInodes = DiskSpaceCheck.inodes(usage(6 * Self.gib, inodes: 500), limits)
        #expect(noInodes.status == .fail && noInodes.detail.contains("500 inodes free"), "\(noInodes)")
        #expect(DiskSpaceCheck.inodes(usage(6 * Self.gib, inodes: 50_000), limits).status == .warn)
        #expect(DiskSpaceCheck.inodes(usage(6 * Self.gib, inodes: 0, total: 0), limits).status == .pass, "no inode limit (btrfs)")
    }

    @Test func aHomeNotYetMadeIsMeasuredOnItsParent() throws {
        let dir = try TempDir.make(prefix: "dgrid-doctor-disk")
        defer { try? FileManager.default.removeItem(at: dir) }
        guard case .success(let usage) = DiskSpaceCheck.usage(of: dir.path + "/not/yet") else {
            Issue.record("statvfs of a missing home's parent failed")
            return
        }
        #expect(usage.path == dir.path)
        #expect(usage.totalBytes > 0)
    }

    // MARK: trust files

    /// A private `$DGRID_HOME` with a private `trust/`.
    static func home() throws -> (StateDirectory, String) {
        let dir = try TempDir.make(prefix: "dgrid-doctor-trust")
        let home = dir.path + "/home"
        try FileManager.default.createDirectory(atPath: home + "/trust", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(home, 0o700)
        return (StateDirectory(path: home), home + "/trust")
    }

    static func write(_ path: String, _ text: String, mode: mode_t = 0o600) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        chmod(path, mode)
    }

    static func check(_ checks: [HostCheck], _ id: HostCheckID) -> HostCheck? { checks.first { $0.id == id } }

    @Test func aWorldWritableTrustFileFailsWithChmod() throws {
        let (state, trust) = try Self.home()
        defer { try? FileManager.default.removeItem(atPath: state.path) }
        Self.write(trust + "/allowed_signers", "alice@example.com \(AllowedSignersTests.alice)\n")
        Self.write(trust + "/policy.toml", "require_signatures = true\n", mode: 0o666)
        let checks = TrustFilesCheck.check(state: state)
        let policy = try #require(Self.check(checks, .trustPolicy))
        #expect(policy.status == .fail, "\(policy)")
        #expect(policy.detail.contains("writable by group or others (mode 666)"), "\(policy.detail)")
        #expect(policy.fix == "chown $(id -un) \(trust)/policy.toml && chmod 600 \(trust)/policy.toml, after checking nobody changed it")
        // The others are still read and reported: every problem at once.
        #expect(Self.check(checks, .trustAllowedSigners)?.status == .pass)
        #expect(Self.check(checks, .trustAllowedSigners)?.detail.contains("1 trusted key") == true)
        #expect(checks.map(\.id) == [.trustDirectory, .trustAllowedSigners, .trustRevokedKeys, .trustPolicy, .trustOpenPGPKeyring, .trustPins])
    }

    @Test func aGroupWritableKeyringASymlinkAndABadLineFail() throws {
        let (state, trust) = try Self.home()
        defer { try? FileManager.default.removeItem(atPath: state.path) }
        Self.write(trust + "/openpgp.gpg", "keys", mode: 0o620)
        Self.write(state.path + "/elsewhere", "\(AllowedSignersTests.bob)\n")
        symlink(state.path + "/elsewhere", trust + "/revoked_keys")
        Self.write(trust + "/allowed_signers", "alice@example.com \(AllowedSignersTests.alice)\nnot a key line\n")
        let checks = TrustFilesCheck.check(state: state)
        #expect(Self.check(checks, .trustOpenPGPKeyring)?.status == .fail)
        #expect(Self.check(checks, .trustRevokedKeys)?.detail.contains("is a symlink") == true, "\(checks)")
        let signers = try #require(Self.check(checks, .trustAllowedSigners))
        #expect(signers.status == .fail && signers.detail.contains("allowed_signers:2"), "\(signers)")
        #expect(signers.fix?.contains("line 2") == true)
    }

    @Test func theNodeKeyAndWorkerTrustPassWarnAndFailAsAWorkerWouldStart() throws {
        let (state, trust) = try Self.home()
        defer { try? FileManager.default.removeItem(atPath: state.path) }
        // A fresh host: no key yet, trust on first use; reading changed nothing.
        var checks = NodeTrustCheck.check(state: state)
        #expect(checks.map(\.id) == [.nodeKey, .trustWorkers])
        #expect(Self.check(checks, .nodeKey)?.status == .pass && Self.check(checks, .nodeKey)?.detail.contains("none yet") == true)
        #expect(Self.check(checks, .trustWorkers)?.detail.contains("trust on first use") == true)
        #expect(!FileManager.default.fileExists(atPath: state.path + "/node") && !FileManager.default.fileExists(atPath: trust + "/known_workers"))
        // A key others can read fails with the fix; one only its user reads passes with its fingerprint.
        let key = try NodeKey.create(state: state, nodeID: "w1")
        chmod(key.path, 0o644)
        checks = NodeTrustCheck.check(state: state)
        #expect(Self.check(checks, .nodeKey)?.status == .fail && Self.check(checks, .nodeKey)?.fix?.contains("chmod 600") == true, "\(checks)")
        chmod(key.path, 0o600)
        #expect(Self.check(NodeTrustCheck.check(state: state), .nodeKey)?.detail.contains(key.publicKey.fingerprint) == true)
        // off warns; allowed_workers stated without its file fails (a worker would not start); with it, passes.
        Self.write(trust + "/policy.toml", "worker_trust = \"off\"\n")
        #expect(Self.check(NodeTrustCheck.check(state: state), .trustWorkers)?.status == .warn)
        Self.write(trust + "/policy.toml", "worker_trust = \"allowed_workers\"\n")
        let missing = try #require(Self.check(NodeTrustCheck.check(state: state), .trustWorkers))
        #expect(missing.status == .fail && missing.detail.contains("no such file"), "\(missing)")
        Self.write(trust + "/allowed_workers", "w1 \(key.publicLine)\n")
        let listed = try #require(Self.check(NodeTrustCheck.check(state: state), .trustWorkers))
        #expect(listed.status == .pass && listed.detail.contains("1 entry"), "\(listed)")
        Self.write(trust + "/policy.toml", "worker_trust = \"everyone\"\n")
        #expect(Self.check(NodeTrustCheck.check(state: state), .trustWorkers)?.status == .fail)
    }

    @Test func noTrustedSignerWarnsThatEveryTaskWouldBeRejected() throws {
        let (state, trust) = try Self.home()
        defer { try? FileManager.default.removeItem(atPath: state.path) }
        let empty = try #require(Self.check(TrustFilesCheck.check(state: state), .trustAllowedSigners))
        #expect(empty.status == .warn && empty.detail.contains("rejects every task"), "\(empty)")
        // Unless the host runs unsigned tasks on purpose.
        Self.write(trust + "/policy.toml", "require_signatures = false\n")
        let checks = TrustFilesCheck.check(state: state)
        #expect(Self.check(checks, .trustAllowedSigners)?.status == .pass)
        #expect(Self.check(checks, .trustPolicy)?.detail.contains("unsigned tasks run") == true)
    }

    @Test func aPinOthersCanWriteOrAnAuditLogOthersCanReadFails() throws {
        let (state, _) = try Self.home()
        defer { try? FileManager.default.removeItem(atPath: state.path) }
        try FileManager.default.createDirectory(atPath: state.path + "/grids", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        Self.write(state.path + "/grids/0123456789abcdef.grid-id", "g-00112233445566778899aabbccddeeff\n")
        Self.write(state.path + "/audit.log", "")
        #expect(TrustFilesCheck.pins(state: state).status == .pass)
        chmod(state.path + "/grids/0123456789abcdef.grid-id", 0o666)
        let pin = TrustFilesCheck.pins(state: state)
        #expect(pin.status == .fail && pin.fix?.hasPrefix("chmod go-w") == true, "\(pin)")
        chmod(state.path + "/grids/0123456789abcdef.grid-id", 0o600)
        chmod(state.path + "/audit.log", 0o644)
        let audit = TrustFilesCheck.pins(state: state)
        #expect(audit.status == .fail && audit.fix?.hasPrefix("chmod 600") == true, "\(audit)")
    }

    @Test func aStateDirectoryOthersCanWriteFails() throws {
        let (state, _) = try Self.home()
        defer { try? FileManager.default.removeItem(atPath: state.path) }
        #expect(StateDirectoryCheck.check(state).status == .pass)
        chmod(state.path, 0o777)
        let check = StateDirectoryCheck.check(state)
        #expect(check.status == .fail && check.fix == "chmod 700 \(state.path)", "\(check)")
        // Trust files in it are not read then.
        #expect(Self.check(TrustFilesCheck.check(state: state), .trustDirectory)?.status == .fail)
    }

    // MARK: clock

    static let thresholds = ClockSkewCheck.Thresholds(leaseSeconds: 90, heartbeatSeconds: 30)
    static let synced = ClockSkewCheck.Synchronisation.synchronised(maxErrorSeconds: 0.01)

    @Test func clockThresholdsComeFromTheLease() {
        #expect(Self.thresholds.failSeconds == 30)
        #expect(Self.thresholds.warnSeconds == 2)
        #expect(ClockSkewCheck.Thresholds(leaseSeconds: 3, heartbeatSeconds: 2).failSeconds == 2)
    }

    @Test func aServerAnHourAheadFails() {
        let evidence = ClockSkewCheck.Evidence(server: .measured(offset: 3600.4, uncertainty: 0.51, source: "HTTP Date"), synchronisation: Self.synced)
        let check = ClockSkewCheck.check(evidence, thresholds: Self.thresholds)
        #expect(check.status == .fail, "\(check)")
        #expect(check.detail.contains("3600 s ahead of this host's"), "\(check.detail)")
        #expect(check.fix?.contains("chrony") == true)
    }

    @Test func skewWithinTheUncertaintyDoesNotCount() {
        let close = ClockSkewCheck.Evidence(server: .measured(offset: -1.2, uncertainty: 0.9, source: "HTTP Date"), synchronisation: Self.synced)
        #expect(ClockSkewCheck.check(close, thresholds: Self.thresholds).status == .pass)
        let warn = ClockSkewCheck.Evidence(server: .measured(offset: -6, uncertainty: 0.6, source: "HTTP Date"), synchronisation: Self.synced)
        let check = ClockSkewCheck.check(warn, thresholds: Self.thresholds)
        #expect(check.status == .warn && check.detail.contains("behind this host's"), "\(check)")
    }

    @Test func aHeartbeatFromTheFutureFailsAndNamesTheNode() {
        let evidence = ClockSkewCheck.Evidence(server: .sameHost("one clock"), nodesCompared: 2,
                                               ahead: [.init(node: "node_fast\u{1b}[2J", seconds: 600)], synchronisation: Self.synced)
        let check = ClockSkewCheck.check(evidence, thresholds: Self.thresholds)
        #expect(check.status == .fail, "\(check)")
        #expect(check.detail.contains("node node_fast"), "\(check.detail)")
        #expect(!check.detail.contains("\u{1b}"), "a writer's node id is shown inert")
    }

    @Test func anUnmeasurableServerOrAnUnsynchronisedClockWarns() {
        let git = ClockSkewCheck.Evidence(server: .unmeasurable("git:// carries no time"), nodesCompared: 3, synchronisation: Self.synced)
        let check = ClockSkewCheck.check(git, thresholds: Self.thresholds)
        #expect(check.status == .warn && check.detail.contains("cannot be measured") && check.detail.contains("3 other nodes"), "\(check)")
        let drifting = ClockSkewCheck.Evidence(server: .sameHost("one clock"), synchronisation: .unsynchronised)
        let unsynced = ClockSkewCheck.check(drifting, thresholds: Self.thresholds)
        #expect(unsynced.status == .warn && unsynced.fix == "run chrony or systemd-timesyncd on this host", "\(unsynced)")
        #expect(ClockSkewCheck.check(.init(server: .sameHost("one clock"), synchronisation: Self.synced), thresholds: Self.thresholds).status == .pass)
    }

    @Test(arguments: [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
    ])
    func httpDatesAreRead(text: String, epoch: Double) {
        #expect(HTTPDate.parse(text)?.timeIntervalSince1970 == epoch)
    }

    @Test(arguments: ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 UTC",
                      "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 36 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", ""])
    func anythingElseIsNotAnHTTPDate(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test func loopbackHostsShareThisClock() {
        #expect(ClockEvidence.host(ofURL: "git://127.0.0.1:9418/grid.git") == "127.0.0.1")
        #expect(ClockEvidence.host(ofURL: "http://[::1]:8080/git/g.git") == "::1")
        #expect(ClockEvidence.isLoopback("localhost") && ClockEvidence.isLoopback("127.0.0.2") && ClockEvidence.isLoopback("::1"))
        #expect(!ClockEvidence.isLoopback("git.example.com"))
    }

    // MARK: the verdict

    @Test func theWorstCheckDecidesTheVerdictAndTheExitStatus() throws {
        let pass = HostCheck.pass(.kernel, "ok"), warn = HostCheck.warn(.overlay, "slow", fix: "x"), fail = HostCheck.fail(.seccomp, "no", fix: "y")
        #expect(DoctorReport(checks: [pass]).exitStatus == 0)
        #expect(DoctorReport(checks: [pass, warn]).exitStatus == 1)
        #expect(DoctorReport(checks: [warn, fail, pass]).exitStatus == 2)
        #expect(DoctorReport(checks: [warn, fail, pass]).verdict == .fail)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(DoctorReport(checks: [pass, fail]))) as? [String: Any] ?? [:]
        #expect(json["verdict"] as? String == "fail")
        #expect(json["exit_status"] as? Int == 2)
        #expect((json["counts"] as? [String: Int]) == ["pass": 1, "warn": 0, "fail": 1])
        let first = (json["checks"] as? [[String: Any]])?.first
        #expect(first?["id"] as? String == "kernel" && first?["status"] as? String == "pass")
    }
}
