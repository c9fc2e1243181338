import Foundation
import Glibc
import Testing
import TestSupport

private let suitePorts = FreePort.loopbackPorts(4)

/// `dgrid doctor` through the built binaries on this host's real kernel
/// (docs/ARCHITECTURE.md §12, "Doctor"): the verdict and exit status here agree
/// with the checks, and each check is made to fail by a real broken setup —
/// a `$DGRID_HOME` on a full tmpfs, trust files others can write, a closed
/// port, a read-only `git daemon`, namespace limits of 0 in a user namespace
/// of the test's own, seccomp filters that refuse one kernel feature as a
/// container runtime's profile does (`scripts/seccomp-jail.py`), a rootless
/// user with no delegated cgroup, a smart HTTP server whose clock is an hour
/// ahead (lighttpd under libfaketime), a node heartbeat dated in the future —
/// and its fix read. What only a fake can show (a kernel without overlay or
/// seccomp) is in `DoctorProbeChecksTests`.
@Suite(.system, .serialized) struct DoctorCLITests {
    typealias Report = [String: Any]

    /// Every check id, in the order doctor prints them.
    static let ids = ["kernel", "namespace.user", "namespace.pid", "namespace.mount", "namespace.net", "namespace.uts",
                      "namespace.ipc", "namespace.cgroup", "overlay", "cgroups", "seccomp", "no_new_privs", "sandbox",
                      "subordinate_ids", "worker_config", "state_directory", "disk.space", "disk.inodes", "image_store",
                      "default_image", "trust.directory", "trust.allowed_signers", "trust.revoked_keys", "trust.policy",
                      "trust.openpgp_keyring", "trust.pins", "trust.workers", "node.key", "grid.remote", "grid.clock"]

    /// `dgrid doctor --json ARGS` with `environment`, through `wrapper` (a command that execs what follows).
    static func doctor(_ args: [String] = [], home: String, environment: [String: String] = [:],
                       wrapper: [String] = []) throws -> (status: Int32, report: Report, stderr: String) {
        let argv = wrapper + [CLI.binary, "doctor", "--json"] + args
        let run = try ProcessRunner.run(argv[0], Array(argv.dropFirst()), environment: ["DGRID_HOME": home].merging(environment) { $1 })
        let report = (try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8))) as? Report ?? [:]
        #expect(!report.isEmpty, "doctor printed no JSON: \(run.stdout) \(run.stderr)")
        return (run.status, report, run.stderr)
    }

    static func check(_ report: Report, _ id: String) -> [String: Any] {
        (report["checks"] as? [[String: Any]] ?? []).first { $0["id"] as? String == id } ?? [:]
    }

    static func status(_ report: Report, _ id: String) -> String { check(report, id)["status"] as? String ?? "missing" }
    static func detail(_ report: Report, _ id: String) -> String { check(report, id)["detail"] as? String ?? "" }
    static func fix(_ report: Report, _ id: String) -> String { check(report, id)["fix"] as? String ?? "" }

    /// A home with the default image, and a grid on this machine initialised by it.
    static func homeAndGrid() throws -> (ImageCLITests.Home, String) {
        let home = try GridFixture.workerHome()
        let repo = try GridFixture.bareRepository()
        #expect(try home.dgrid("init", "--repo", "file://" + repo).status == 0)
        return (home, "file://" + repo)
    }

    // MARK: this host

    @Test func theVerdictAndExitStatusOnThisHostAgreeWithTheChecks() throws {
        let (home, url) = try Self.homeAndGrid()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let (status, report, stderr) = try Self.doctor(["--repo", url], home: home.path)
        let checks = report["checks"] as? [[String: Any]] ?? []
        #expect(checks.compactMap { $0["id"] as? String } == Self.ids, "every check once, in order")
        let statuses = checks.compactMap { $0["status"] as? String }
        #expect(statuses.allSatisfy { ["pass", "warn", "fail"].contains($0) })
        let worst = statuses.contains("fail") ? "fail" : statuses.contains("warn") ? "warn" : "pass"
        #expect(report["verdict"] as? String == worst)
        #expect(report["exit_status"] as? Int == ["pass": 0, "warn": 1, "fail": 2][worst])
        #expect(Int(status) == report["exit_status"] as? Int, "the process exits with the report's status: \(stderr)")
        let counts = report["counts"] as? [String: Int] ?? [:]
        #expect(counts == ["pass": statuses.filter { $0 == "pass" }.count, "warn": statuses.filter { $0 == "warn" }.count,
                           "fail": statuses.filter { $0 == "fail" }.count])
        for check in checks {
            let hasFix = check["fix"] is String
            #expect(hasFix == (check["status"] as? String != "pass"), "a fix exactly where something is wrong: \(check)")
            #expect(check.keys.sorted() == ["detail", "fix", "id", "status"], "\(check)")
        }
        // This host can run workers: the kernel's part all passes, through the real probe sandbox.
        for id in Self.ids.prefix(13) where id != "cgroups" {
            #expect(Self.status(report, id) == "pass", "\(id): \(Self.check(report, id))")
        }
        #expect(Self.status(report, "default_image") == "pass")
        #expect(Self.status(report, "grid.remote") == "pass", "\(Self.check(report, "grid.remote"))")
        #expect(Self.detail(report, "grid.remote").contains("push allowed"))
        #expect(Self.status(report, "grid.clock") != "fail", "\(Self.check(report, "grid.clock"))")
        // Hybrid cgroups are described as they are: v1 controllers, the unified mount and what it lacks.
        let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        let cgroups = Self.detail(report, "cgroups")
        #expect(Self.status(report, "cgroups") == "pass", "\(cgroups)")
        #expect(cgroups.contains("limits memory, cpu, pids"), "\(cgroups)")
        if mountinfo.contains(" - cgroup cgroup "), let unified = mountinfo.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") }) {
            let point = String(unified.split(separator: " ")[4])
            #expect(cgroups.hasPrefix("hybrid: v1 controllers"), "\(cgroups)")
            #expect(cgroups.contains("cgroup2 at \(point) offering"), "\(cgroups)")
            #expect(cgroups.contains("uses cgroup v1"), "\(cgroups)")
        }
        // The probe left nothing in the run directory.
        let run = (try? FileManager.default.contentsOfDirectory(atPath: home.path + "/run")) ?? []
        #expect(!run.contains { $0.hasPrefix("doctor-") }, "\(run)")

        // The text form: the same checks, the same exit status, a fix under each line that needs one.
        let text = try home.dgrid("doctor", "--repo", url)
        #expect(text.status == status)
        let lines = text.stdout.split(separator: "\n").map(String.init)
        for id in Self.ids {
            #expect(lines.contains { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.map(String.init) == id }, "\(id) in \(text.stdout)")
        }
        #expect(lines.filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("fix: ") }.count == counts["warn", default: 0] + counts["fail", default: 0])
        #expect(lines.last?.hasPrefix("\(counts["pass"] ?? 0) pass, \(counts["warn"] ?? 0) warn, \(counts["fail"] ?? 0) fail") == true, "\(lines.last ?? "")")
        // `dgrid --help` names the verb.
        #expect(try CLI.run(["--help"]).stdout.contains("doctor"))
    }

    // MARK: $DGRID_HOME

    /// A tmpfs of `options` mounted on a fresh directory, unmounted by `unmount()`.
    struct TinyFilesystem {
        let path: String

        init(_ options: String) throws {
            path = try TempDir.make(prefix: "dgrid-doctor-tmpfs").path + "/home"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            let mounted = try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", options, "dgrid-doctor-test", path])
            try #require(mounted.status == 0, "\(mounted.stderr)")
        }

        func unmount() { _ = try? ProcessRunner.run("/bin/umount", ["-l", path]) }
    }

    @Test func aFullHomeOnATinyTmpfsFailsSpaceAndInodes() throws {
        let tiny = try TinyFilesystem("size=8m,nr_inodes=400,mode=0700")
        defer { tiny.unmount() }
        // Filled: every byte and most inodes taken.
        _ = try ProcessRunner.run("/bin/dd", ["if=/dev/zero", "of=\(tiny.path)/fill", "bs=1M"])
        _ = try ProcessRunner.run("/bin/sh", ["-c", "mkdir \"$0/many\" && cd \"$0/many\" && i=0; while [ $i -lt 350 ] && : > f$i 2>/dev/null; do i=$((i+1)); done", tiny.path])
        let (status, report, _) = try Self.doctor(home: tiny.path)
        #expect(status == 2)
        #expect(Self.status(report, "disk.space") == "fail", "\(Self.check(report, "disk.space"))")
        #expect(Self.detail(report, "disk.space").contains("on \(tiny.path)"), "\(Self.detail(report, "disk.space"))")
        #expect(Self.detail(report, "disk.space").contains("under 1 GiB"))
        #expect(Self.fix(report, "disk.space").contains("dgrid image gc"))
        #expect(Self.status(report, "disk.inodes") == "fail", "\(Self.check(report, "disk.inodes"))")
        #expect(Self.detail(report, "disk.inodes").contains("under 10000"), "\(Self.detail(report, "disk.inodes"))")
        #expect(Self.fix(report, "disk.inodes").contains("more inodes"))
    }

    @Test func aRoomyButSmallHomeOnlyWarns() throws {
        let tiny = try TinyFilesystem("size=2g,mode=0700")
        defer { tiny.unmount() }
        let (_, report, _) = try Self.doctor(home: tiny.path)
        #expect(Self.status(report, "disk.space") == "warn", "\(Self.check(report, "disk.space"))")
        #expect(Self.detail(report, "disk.space").contains("under 4 GiB"))
    }

    @Test func aCorruptBlobFailsTheStoreAndNothingIsMoved() throws {
        let home = try GridFixture.workerHome()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let blobs = home.path + "/images/blobs/sha256"
        // The largest blob is a layer: rotten bytes under its digest's name.
        let names = try FileManager.default.contentsOfDirectory(atPath: blobs)
        func size(_ name: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: blobs + "/" + name))?[.size] as? Int) ?? 0 }
        let largest = try #require(names.max { size($0) < size($1) })
        try Data("rotten".utf8).write(to: URL(fileURLWithPath: blobs + "/" + largest))
        let (status, report, _) = try Self.doctor(home: home.path)
        #expect(status == 2)
        #expect(Self.status(report, "image_store") == "fail", "\(Self.check(report, "image_store"))")
        #expect(Self.detail(report, "image_store").contains("1 of \(names.count) blobs are corrupt: \(largest.prefix(12))"), "\(Self.detail(report, "image_store"))")
        #expect(Self.fix(report, "image_store").hasPrefix("dgrid image verify"))
        // Doctor reports; it does not quarantine (dgrid image verify does).
        #expect(FileManager.default.fileExists(atPath: blobs + "/" + largest))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: home.path + "/images/quarantine")) ?? []).isEmpty)
        // The image's layers were unpacked at import: it still resolves.
        #expect(Self.status(report, "default_image") == "pass", "\(Self.check(report, "default_image"))")

        // A fresh host has no default image: the fix imports and allows it.
        let fresh = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: fresh.path) }
        let (_, empty, _) = try Self.doctor(home: fresh.path)
        #expect(Self.status(empty, "default_image") == "fail")
        #expect(Self.fix(empty, "default_image").contains("dgrid image import") && Self.fix(empty, "default_image").contains("dgrid image allow"))
        #expect(Self.status(empty, "image_store") == "pass")
    }

    @Test func trustFilesAndPinsOthersCanWriteFail() throws {
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let policy = home.path + "/trust/policy.toml"
        #expect(chmod(policy, 0o666) == 0)
        try FileManager.default.createDirectory(atPath: home.path + "/grids", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        _ = FileManager.default.createFile(atPath: home.path + "/grids/00aa11bb22cc33dd.grid-id", contents: Data("g-00112233445566778899aabbccddeeff\n".utf8),
                                           attributes: [.posixPermissions: 0o666])
        let (status, report, _) = try Self.doctor(home: home.path)
        #expect(status == 2)
        #expect(Self.status(report, "trust.policy") == "fail")
        #expect(Self.detail(report, "trust.policy").contains("writable by group or others (mode 666)"), "\(Self.detail(report, "trust.policy"))")
        #expect(Self.fix(report, "trust.policy") == "chown $(id -un) \(policy) && chmod 600 \(policy), after checking nobody changed it")
        #expect(Self.status(report, "trust.pins") == "fail")
        #expect(Self.fix(report, "trust.pins").hasPrefix("chmod go-w \(home.path)/grids/00aa11bb22cc33dd.grid-id"))
        // A worker on this home refuses to start for the same reason (exit 78): doctor said it first.
        let worker = try home.dgrid("worker", "--repo", "file:///nonexistent", "--once")
        #expect(worker.status == 78 && worker.stderr.contains("policy.toml"), "\(worker.stderr)")
        // Text: the line, then its fix.
        let text = try home.dgrid("doctor")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        let index = try #require(lines.firstIndex { $0.hasPrefix("FAIL  trust.policy") }, "\(text.stdout)")
        #expect(lines[index + 1].trimmingCharacters(in: .whitespaces).hasPrefix("fix: chown"))
    }

    // MARK: the grid

    @Test func anUnreachableRepositoryFailsTheRemoteAndTheClockIsNotMeasured() throws {
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let closed = try FreePort.loopback()
        for url in ["git://127.0.0.1:\(closed)/grid.git", "http://127.0.0.1:\(closed)/git/grid.git"] {
            let (status, report, _) = try Self.doctor(["--repo", url], home: home.path)
            #expect(status == 2)
            #expect(Self.status(report, "grid.remote") == "fail", "\(Self.check(report, "grid.remote"))")
            #expect(Self.detail(report, "grid.remote").contains("cannot list the grid's refs"), "\(Self.detail(report, "grid.remote"))")
            #expect(Self.detail(report, "grid.remote").contains("127.0.0.1:\(closed)"))
            #expect(!Self.fix(report, "grid.remote").isEmpty)
            #expect(Self.status(report, "grid.clock") == "warn")
            #expect(Self.fix(report, "grid.clock") == "fix grid.remote first")
        }
        // No repository at all: both grid checks warn, naming what to give.
        let (_, none, _) = try Self.doctor(home: home.path, environment: ["DGRID_REPO_URL": ""])
        #expect(Self.status(none, "grid.remote") == "warn" && Self.fix(none, "grid.remote").contains("--repo URL"))
    }

    @Test func aReadOnlyGitDaemonFailsPushAccessAndAWritableOnePasses() throws {
        let (home, url) = try Self.homeAndGrid()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let repo = String(url.dropFirst("file://".count))
        let served = (repo as NSString).deletingLastPathComponent, name = (repo as NSString).lastPathComponent
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        let port = suitePorts[0]
        for readOnly in [true, false] {
            let started = try ProcessRunner.run("/bin/bash", [script, "start", served, "\(port)"],
                                                environment: ["GIT_DAEMON_READ_ONLY": readOnly ? "1" : ""])
            try #require(started.status == 0, "\(started.stderr)")
            defer { _ = try? ProcessRunner.run("/bin/bash", [script, "stop", served]) }
            let (_, report, _) = try Self.doctor(["--repo", "git://127.0.0.1:\(port)/\(name)"], home: home.path)
            let remote = Self.check(report, "grid.remote")
            if readOnly {
                #expect(remote["status"] as? String == "fail", "\(remote)")
                #expect(Self.detail(report, "grid.remote").contains("can be read (git with no credentials) but not pushed to"), "\(remote)")
                #expect(Self.fix(report, "grid.remote").contains("--enable=receive-pack"))
            } else {
                #expect(remote["status"] as? String == "pass", "\(remote)")
            }
            // git:// carries no time, but this server is this machine.
            #expect(Self.detail(report, "grid.clock").contains("(loopback): one clock"), "\(Self.check(report, "grid.clock"))")
        }
        #expect(try GridFixture.refs(repo, "refs/dgrid").isEmpty, "doctor pushed nothing")
    }

    @Test func anHTTPServerWhoseClockIsAnHourAheadFailsTheClock() throws {
        let (base, served, repo) = try GridTransportCLITests.servedGrid("doctor-http")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let tokenFile = base + "/token"
        _ = FileManager.default.createFile(atPath: tokenFile, contents: Data((GridTransportCLITests.token + "\n").utf8), attributes: [.posixPermissions: 0o600])
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-http.sh").path
        for (offset, port) in [("+1h", suitePorts[1]), ("", suitePorts[2])] {
            let started = try ProcessRunner.run("/bin/bash", ["-c", "exec \"$0\" start \"$1\" \"$2\" x-access-token < \"$3\"",
                                                              script, served, "\(port)", tokenFile], environment: ["GIT_HTTP_FAKETIME": offset])
            try #require(started.status == 0, "\(started.stderr)")
            defer { _ = try? ProcessRunner.run("/bin/bash", [script, "stop", served]) }
            let url = "http://127.0.0.1:\(port)/git/grid.git"
            if offset == "+1h" { #expect(try home.dgrid("init", "--repo", url, "--token-file", tokenFile).status == 0) }
            let (_, report, stderr) = try Self.doctor(["--repo", url, "--token-file", tokenFile], home: home.path)
            #expect(Self.status(report, "grid.remote") == "pass", "\(Self.check(report, "grid.remote")) \(stderr)")
            let clock = Self.detail(report, "grid.clock")
            if offset == "+1h" {
                #expect(Self.status(report, "grid.clock") == "fail", "\(Self.check(report, "grid.clock"))")
                #expect(clock.contains("the server's clock (HTTP Date, HTTP 401) is 3600 s ahead of this host's")
                        || clock.contains("the server's clock (HTTP Date, HTTP 401) is 3599 s ahead of this host's")
                        || clock.contains("the server's clock (HTTP Date, HTTP 401) is 3601 s ahead of this host's"), "\(clock)")
                #expect(Self.fix(report, "grid.clock").contains("chrony"))
            } else {
                #expect(Self.status(report, "grid.clock") != "fail", "\(clock)")
                #expect(clock.contains("the server's clock (HTTP Date, HTTP 401) is within"), "\(clock)")
            }
            #expect(!clock.contains(GridTransportCLITests.token) && !stderr.contains(GridTransportCLITests.token))
        }
        #expect(!FileManager.default.fileExists(atPath: repo + "/refs/dgrid"), "doctor pushed nothing")
    }

    /// Another worker's heartbeat, written into the grid as any writer could (a fake node's record, real refs).
    static func pushHeartbeat(_ repo: String, node: String, at date: Date) throws {
        let formatter = ISO8601DateFormatter()
        let record = "{\"node_id\":\"\(node)\",\"last_heartbeat\":\"\(formatter.string(from: date))\",\"status\":\"idle\",\"slots\":1,\"health\":\"healthy\"}"
        let file = try TempDir.make(prefix: "dgrid-beat").path + "/node.json"
        try Data(record.utf8).write(to: URL(fileURLWithPath: file))
        let blob = try GridFixture.git(["--git-dir", repo, "hash-object", "-w", file]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tree = try ProcessRunner.run("/bin/sh", ["-c", "printf '100644 blob %s\\tnode.json\\n' \"$1\" | git --git-dir \"$0\" mktree", repo, blob])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let commit = try GridFixture.git(["--git-dir", repo, "-c", "user.name=w", "-c", "user.email=w@w", "commit-tree", tree, "-m", "heartbeat \(node)"])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try GridFixture.git(["--git-dir", repo, "update-ref", "refs/dgrid/nodes/\(node)", commit]).status == 0)
    }

    @Test func aHeartbeatDatedInTheFutureFailsTheClockAndAnOldOneDoesNot() throws {
        let (home, url) = try Self.homeAndGrid()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let repo = String(url.dropFirst("file://".count))
        try Self.pushHeartbeat(repo, node: "node_gone", at: Date().addingTimeInterval(-7200))
        let (_, quiet, _) = try Self.doctor(["--repo", url], home: home.path)
        #expect(Self.status(quiet, "grid.clock") != "fail", "\(Self.check(quiet, "grid.clock"))")
        #expect(Self.detail(quiet, "grid.clock").contains("1 other node's heartbeat is not dated ahead"), "\(Self.detail(quiet, "grid.clock"))")

        try Self.pushHeartbeat(repo, node: "node_ahead", at: Date().addingTimeInterval(600))
        let (status, report, _) = try Self.doctor(["--repo", url], home: home.path)
        #expect(status == 2)
        let clock = Self.detail(report, "grid.clock")
        #expect(Self.status(report, "grid.clock") == "fail", "\(clock)")
        #expect(clock.contains("node node_ahead's last heartbeat is dated"), "\(clock)")
        #expect(clock.contains("fail over 30 s"), "the threshold is stated: \(clock)")
        // This node's own heartbeat is never compared with this clock.
        let (_, own, _) = try Self.doctor(["--repo", url, "--node-id", "node_ahead"], home: home.path)
        #expect(Self.status(own, "grid.clock") != "fail", "\(Self.check(own, "grid.clock"))")
    }

    // MARK: the kernel, refused for real

    /// `user.max_<ns>_namespaces` set to 0 in a user namespace of the test's own
    /// (these limits are per user namespace, so the host's stay as they are);
    /// doctor runs inside it.
    @Test(arguments: ["user", "pid", "mnt", "net", "uts", "ipc", "cgroup"])
    func aNamespaceLimitOfZeroFailsThatNamespace(name: String) throws {
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let wrapper = ["/usr/bin/unshare", "--user", "--map-root-user", "--", "/bin/sh", "-c",
                       "echo 0 > /proc/sys/user/max_\(name)_namespaces && exec \"$@\"", "sh"]
        let (status, report, stderr) = try Self.doctor(home: home.path, wrapper: wrapper)
        let id = "namespace." + (name == "mnt" ? "mount" : name)
        #expect(status == 2, "\(stderr)")
        #expect(Self.status(report, id) == "fail", "\(Self.check(report, id))")
        #expect(Self.detail(report, id).contains("user.max_\(name)_namespaces is 0"), "\(Self.check(report, id))")
        #expect(Self.fix(report, id) == "sysctl -w user.max_\(name)_namespaces=15000 (and keep it in /etc/sysctl.d/)")
        #expect(Self.status(report, "sandbox") == "fail")
    }

    /// A seccomp filter refusing one feature with EPERM, as container runtimes' profiles do.
    @Test(arguments: [
        ("userns", "namespace.user", "a container's seccomp profile"),
        ("cgroupns", "namespace.cgroup", "allow unshare(CLONE_NEWCGROUP)"),
        ("no-new-privs", "no_new_privs", "allow prctl(PR_SET_NO_NEW_PRIVS)"),
        ("seccomp", "seccomp", "allow seccomp(2)"),
    ])
    func aSeccompFilterRefusingAFeatureFailsItsCheck(rule: String, id: String, fix: String) throws {
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let jail = CLI.packageRoot.appendingPathComponent("scripts/seccomp-jail.py").path
        let (status, report, stderr) = try Self.doctor(home: home.path, wrapper: [jail, rule, "--"])
        #expect(status == 2, "\(stderr)")
        #expect(Self.status(report, id) == "fail", "\(Self.check(report, id))")
        #expect(Self.detail(report, id).contains("Operation not permitted"), "\(Self.check(report, id))")
        #expect(Self.fix(report, id).contains(fix), "\(Self.check(report, id))")
        #expect(Self.status(report, "sandbox") == "fail")
        #expect(Self.fix(report, "sandbox") == "see \(id)")
    }

    @Test func aRootlessUserWithoutADelegatedCgroupFailsCgroupsUnlessItRunsWithoutLimits() throws {
        let user = try RootlessUser()
        defer { user.remove() }
        func doctor(_ args: [String]) throws -> Report {
            let run = try user.run(CLI.binary, ["doctor", "--json"] + args)
            #expect(run.status == 2 || run.status == 1, "\(run.stderr)")
            return (try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8))) as? Report ?? [:]
        }
        let strict = try doctor([])
        #expect(Self.status(strict, "cgroups") == "fail", "\(Self.check(strict, "cgroups"))")
        #expect(Self.detail(strict, "cgroups").contains("not writable by uid \(user.uid)"), "\(Self.detail(strict, "cgroups"))")
        #expect(Self.fix(strict, "cgroups").contains("Delegate=yes") && Self.fix(strict, "cgroups").contains("--no-cgroup-limits"))
        // The rest of the kernel works for this user: its own namespaces, subordinate ids mapped by newuidmap.
        for id in ["namespace.user", "namespace.pid", "namespace.mount", "namespace.net", "namespace.cgroup", "overlay", "seccomp", "no_new_privs"] {
            #expect(Self.status(strict, id) == "pass", "\(id): \(Self.check(strict, id))")
        }
        #expect(Self.status(strict, "subordinate_ids") == "pass", "\(Self.check(strict, "subordinate_ids"))")
        #expect(Self.detail(strict, "subordinate_ids").hasPrefix("\(user.name): uids \(user.subordinateStart)+"))
        #expect(Self.detail(strict, "state_directory").contains(user.home + "/.local/share/dgrid"))
        let lenient = try doctor(["--no-cgroup-limits"])
        #expect(Self.status(lenient, "cgroups") == "warn", "\(Self.check(lenient, "cgroups"))")

        // Root, asked about that user, reads the same ranges.
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let (_, named, _) = try Self.doctor(["--user", user.name], home: home.path)
        #expect(Self.detail(named, "subordinate_ids").hasPrefix("\(user.name): uids \(user.subordinateStart)+"), "\(Self.check(named, "subordinate_ids"))")
        let (_, unknown, _) = try Self.doctor(["--user", "no-such-user-dgrid"], home: home.path)
        #expect(Self.status(unknown, "subordinate_ids") == "fail")
    }

    @Test func aBadWorkerSettingFailsTheConfigCheck() throws {
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let (status, report, _) = try Self.doctor(["--set", "max_memory=lots"], home: home.path)
        #expect(status == 2)
        #expect(Self.status(report, "worker_config") == "fail")
        #expect(Self.detail(report, "worker_config").contains("max_memory"), "\(Self.check(report, "worker_config"))")
        #expect(Self.detail(report, "worker_config").contains("exit 78"))
    }
}
