import Foundation
import Synchronization
import Testing
import TestSupport

/// `make deb` and the worker as a systemd service (docs/ARCHITECTURE.md §12,
/// "Install and run as a service"), for real: the release build packaged with
/// dpkg-deb, installed with apt into a fresh Debian 12 root (debootstrapped
/// once into a cache, used through an overlay: scripts/debian-root.sh), and
/// that root booted with systemd as its pid 1 under systemd-nspawn, where
/// `dgrid-worker@.service` runs against a grid served by `git daemon` on the
/// host's loopback.
///
/// What differs from a host systemd boots: nspawn mounts the cgroup v1
/// controllers read-only and the harness remounts them writable (as they are
/// for root on a hybrid host); this host's cgroup v2 hierarchy has no
/// controllers, so Delegate=yes on a v2 host is exercised only on a fake v2
/// tree (CgroupProbeTests), not here. The device cgroup
/// of PrivateDevices= and ProtectClock= cannot be exercised in the container
/// (its devices controller is nspawn's), which is why the unit leaves them out.
@Suite(.system, .serialized) struct DebPackageCLITests {
    @Test func thePackageDependsOnWhatItLinksAndRunsASandboxInAFreshDebian() throws {
        let deb = try DebPackage.path()
        let depends = try DebPackage.field(deb, "Depends")
        #expect(depends.contains("libgit2-1.5 ("), "\(depends)")
        #expect(depends.contains("libc6 (") && !depends.contains("swift"), "\(depends)")

        let root = try DebianRoot()
        defer { root.down() }
        // Fresh: nothing of what the package needs is there until apt reads its Depends.
        #expect(try root.run("dpkg -s libgit2-1.5 >/dev/null 2>&1").status != 0)
        try root.install(deb)
        #expect(try root.run("dpkg -s libgit2-1.5 >/dev/null 2>&1").status == 0)
        let version = try root.run("dgrid --version")
        #expect(try DebPackage.field(deb, "Version").hasPrefix(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "+"),
                "\(version.stdout)\(version.stderr)")

        // The default image from the installed recipe, then a sandbox with limits.
        try root.importDefaultImage()
        let sandbox = try root.run("""
            dgrid sandbox run --image dgrid/busybox:latest --memory 64m --pids 32 -- \
              sh -c 'id -u; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status'
            """)
        #expect(sandbox.status == 0, "\(sandbox.stderr)")
        #expect(sandbox.stdout == "1000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n", "\(sandbox.stdout)\(sandbox.stderr)")

        // Doctor in the fresh root: no check fails, and the sandbox probe passes (the image is there).
        let doctor = try root.run("dgrid doctor --json")
        let report = (try? JSONSerialization.jsonObject(with: Data(doctor.stdout.utf8))) as? [String: Any] ?? [:]
        let checks = report["checks"] as? [[String: Any]] ?? []
        let failed = checks.filter { $0["status"] as? String == "fail" }.map { "\($0["id"] ?? "?"): \($0["detail"] ?? "")" }
        #expect(!checks.isEmpty && doctor.status != 2 && failed.isEmpty, "\(failed) \(doctor.stderr)")
        #expect(checks.first { $0["id"] as? String == "sandbox" }?["status"] as? String == "pass", "\(doctor.stdout)")

        let page = try root.run("zcat /usr/share/man/man1/dgrid.worker.1.gz")
        #expect(page.stdout.contains("allow-unsigned"), "\(page.stderr)")

        // Removal takes the package's files and leaves the operator's state.
        #expect(try root.run("apt-get remove -y -q dgrid >/dev/null").status == 0)
        let left = try root.run("""
            test ! -e /usr/bin/dgrid && test ! -e /usr/libexec/dgrid && \
            test ! -e /usr/lib/systemd/system/dgrid-worker@.service && test -d /var/lib/dgrid/images && echo clean
            """)
        #expect(left.stdout == "clean\n", "\(left.stderr)")
    }

    @Test func theWorkerRunsUnderSystemdHardenedAndTellsSystemdHowItIs() throws {
        let service = try ServiceRoot()
        defer { service.stop() }
        let root = service.root
        // systemd's own reading of the installed unit, in the root it runs in
        // (--man=no: the minimal root has no man-db; InstallCLITests checks the page).
        let verified = try root.exec("systemd-analyze verify --man=no dgrid-worker@grid1.service")
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")

        try root.writeFile("/etc/dgrid/grid1.env", "DGRID_REPO_URL=\(service.url)\nNODE_ID=node_deb\nHEARTBEAT_INTERVAL=1\nPULL_INTERVAL=0.5\n",
                           mode: 0o600)
        // Pings every second, so the test sees systemd act on them within seconds.
        try root.writeFile("/etc/systemd/system/dgrid-worker@grid1.service.d/watchdog.conf", "[Service]\nWatchdogSec=2s\n", mode: 0o644)
        #expect(try root.exec("systemctl daemon-reload").status == 0)
        // Type=notify: `start` returns once the worker said READY=1.
        let started = try root.exec("timeout 120 systemctl start dgrid-worker@grid1")
        #expect(started.status == 0, "\(started.stderr)\(root.journalText("grid1"))")
        #expect(try root.property("grid1", "StatusText").hasPrefix("claiming: 0/"))

        try root.writeTasks([
            ("plain", #""script":"echo ran-under-systemd","timeout_seconds":30,"resources":{"memory":"64m"}"#),
            ("slow", #""script":"sleep 100","timeout_seconds":2"#),
            ("ckpt", #""script":"for i in 1 2 3; do echo $i > /checkpoint/n; sleep 1; done; cat /checkpoint/n","timeout_seconds":30,"checkpointing":{"interval_seconds":1}"#),
            ("art", #""script":"echo artifact > /output/a.txt","timeout_seconds":30"#),
        ])
        #expect(try root.exec("dgrid submit --repo \(service.url) \(DebianRoot.shared)/tasks").status == 0)
        let drained = try GridFaultCLITests.waitUntil(120) { try root.property("grid1", "StatusText").contains("3 completed, 1 failed") }
        #expect(drained, "\(root.journalText("grid1", property: "StatusText"))\n\(root.journalText("grid1"))")
        #expect(try root.exec("dgrid result --repo \(service.url) plain").stdout.contains("ran-under-systemd"))
        #expect(try root.exec("dgrid result --repo \(service.url) slow --json").stdout.contains("\"timed_out\": true"))
        #expect(try root.exec("dgrid result --repo \(service.url) ckpt").stdout.hasPrefix("3"))
        #expect(try root.exec("mkdir -p /tmp/dl && dgrid result --repo \(service.url) art --download /tmp/dl && cat /tmp/dl/*/a.txt /tmp/dl/a.txt 2>/dev/null")
            .stdout.contains("artifact"))

        // The journal: dgrid's plain lines, no time of their own, priorities the journal filters on.
        let journal = try root.journal("grid1")
        #expect(journal.contains("\ninfo worker started node=node_deb"), "\(journal)")
        #expect(!journal.contains("Z info "), "a line kept its own timestamp: \(journal)")
        let warnings = try root.journal("grid1", priority: "warning")
        #expect(warnings.contains("warning unsigned tasks allowed"), "\(warnings)")
        #expect(!warnings.contains("worker started"), "an info line passed the warning filter: \(warnings)")

        // The hardening is in force on the process that ran the tasks.
        let pid = try root.property("grid1", "MainPID")
        let status = try root.exec("cat /proc/\(pid)/status").stdout
        #expect(status.contains("NoNewPrivs:\t1") && status.contains("Seccomp:\t2"), "\(status)")
        let bounding = status.split(separator: "\n").first { $0.hasPrefix("CapBnd:") }.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
        let capSysModule: UInt64 = 1 << 16, capSysAdmin: UInt64 = 1 << 21
        #expect(bounding.map { $0 & capSysModule == 0 && $0 & capSysAdmin != 0 } == true, "CapBnd \(String(bounding ?? 0, radix: 16))")
        #expect(try root.exec("grep -E '^[0-9]+ [0-9]+ [^ ]+ / / ro,' /proc/\(pid)/mountinfo").status == 0, "ProtectSystem=strict: / is not read-only")

        // Watchdog: pings keep coming from the heartbeat loop, and systemd sees them.
        let firstPing = try root.property("grid1", "WatchdogTimestampMonotonic")
        Thread.sleep(forTimeInterval: 5)
        #expect(try root.property("grid1", "WatchdogTimestampMonotonic") != firstPing)
        #expect(try root.property("grid1", "NRestarts") == "0" && root.property("grid1", "ActiveState") == "active")

        // A crash: Restart=on-failure brings it back, and it is ready again.
        #expect(try root.exec("kill -KILL \(pid)").status == 0)
        let restarted = try GridFaultCLITests.waitUntil(30) {
            try root.property("grid1", "NRestarts") == "1" && root.property("grid1", "ActiveState") == "active"
                && root.property("grid1", "MainPID") != pid && root.property("grid1", "StatusText").hasPrefix("claiming:")
        }
        #expect(restarted, "\(root.journalText("grid1"))")

        // A stop is SIGTERM to the worker alone (KillMode=mixed): it ends cleanly.
        #expect(try root.exec("timeout 200 systemctl stop dgrid-worker@grid1").status == 0)
        #expect(try root.property("grid1", "Result") == "success")
        #expect(try root.journal("grid1").contains("info worker stopped"))
    }

    /// A setting the worker refuses is EX_CONFIG (78): systemd does not restart
    /// into it. A grid without an .env file does not start at all.
    @Test func aBadSettingOrAMissingEnvFileFailsOnceWithTheReason() throws {
        let service = try ServiceRoot()
        defer { service.stop() }
        let root = service.root
        try root.writeFile("/etc/dgrid/grid2.env", "DGRID_REPO_URL=\(service.url)\nDGRID_MAX_MEMORY=lots\n", mode: 0o600)
        #expect(try root.exec("timeout 60 systemctl start dgrid-worker@grid2").status != 0)
        Thread.sleep(forTimeInterval: 7)  // past RestartSec=5s: a restart would have happened
        #expect(try root.property("grid2", "NRestarts") == "0")
        #expect(try root.property("grid2", "ExecMainStatus") == "78")
        #expect(try root.property("grid2", "ActiveState") == "failed")
        #expect(try root.journal("grid2").contains("max_memory"), "\(root.journalText("grid2"))")

        #expect(try root.exec("timeout 60 systemctl start dgrid-worker@nogrid").status != 0)
        #expect(try root.journal("nogrid").contains("Failed to load environment files"), "\(root.journalText("nogrid"))")
    }

    /// The options the unit leaves out, each tried with the worker doing its
    /// work under it (scripts/service-probe.sh: plain, timed-out, checkpointed
    /// and artifact tasks): each must really break something, or it belongs
    /// in the unit. The list and the reasons are docs/ARCHITECTURE.md §12's.
    @Test func eachHardeningOptionTheUnitLeavesOutBreaksTheWorker() throws {
        let service = try ServiceRoot()
        defer { service.stop() }
        let root = service.root
        try root.copyIn(CLI.packageRoot.appendingPathComponent("scripts/service-probe.sh").path, as: "service-probe.sh")
        func probe(_ option: String?) throws -> String {
            try root.exec("\(DebianRoot.shared)/service-probe.sh \(service.url) \(option.map { "'\($0)'" } ?? "")").stdout
        }
        let plain = try probe(nil)
        try #require(plain.contains("PROBE OK"), "the worker fails without any option: \(plain)")
        // What each breaks, as the worker says it (any one of them: which task meets it first varies).
        let left: [(option: String, breaks: [String])] = [
            ("ProtectControlGroups=yes", ["cgroups"]),
            ("ProtectHostname=yes", ["sethostname: Operation not permitted"]),
            ("RestrictNamespaces=yes", ["clone: Operation not permitted"]),
            // Root no more: the task's uid_map, its scratch tmpfs, its /checkpoint.
            ("PrivateUsers=yes", ["Operation not permitted", "needs a root worker"]),
            ("SystemCallFilter=@system-service", ["status=SYS"]),
            ("PrivateNetwork=yes", ["Network is unreachable"]),
        ]
        for (option, breaks) in left {
            let outcome = try probe(option)
            #expect(outcome.contains("PROBE FAIL") && breaks.contains(where: outcome.contains), "\(option): \(outcome)")
        }

        // Filters bind every task too. A static probe as the image's /bin/sh:
        // a JIT's writable+executable mapping, then an i386 system call.
        let filters = try root.importFiltersImage()
        func sandbox(_ option: String?) throws -> ProcessResult {
            try root.exec("systemd-run --wait --pipe --collect -p Delegate=yes -p StateDirectory=dgrid \(option.map { "-p \($0)" } ?? "") " +
                          "dgrid sandbox run --image \(filters) -- /bin/sh 2>&1")
        }
        let alone = try sandbox(nil).stdout
        #expect(alone.contains("wx-mmap: ok") && alone.contains("i386-syscall: Operation not permitted"), "\(alone)")
        // Left out: JIT runtimes in tasks (node, a JVM) could not run.
        #expect(try sandbox("MemoryDenyWriteExecute=yes").stdout.contains("wx-mmap: Operation not permitted"))
        // Kept: an i386 call, refused by dgrid's profile, now kills the task (SIGSYS, 128+31).
        let native = try sandbox("SystemCallArchitectures=native").stdout
        #expect(native.contains("wx-mmap: ok") && !native.contains("i386-syscall") && native.contains("status=159"), "\(native)")

        // Left out: egress opens ip_forward read-write (EgressNetwork), and the ledger
        // reads the boot id to skip checking objects it checked since boot.
        let tunables = "systemd-run --wait --pipe --collect -p ProtectKernelTunables=yes sh -c ': <> /proc/sys/net/ipv4/ip_forward && echo writable' 2>&1"
        #expect(try root.exec(tunables).stdout.contains("Read-only file system"))
        #expect(try root.exec(tunables.replacing("-p ProtectKernelTunables=yes ", with: "")).stdout.contains("writable"))
        let bootID = "systemd-run --wait --pipe --collect -p ProcSubset=pid cat /proc/sys/kernel/random/boot_id 2>&1"
        #expect(try root.exec(bootID).stdout.contains("No such file or directory"))
    }
}

/// The Debian package of the release build, made once per test process with
/// `make deb`'s scripts (not make itself: SwiftPM must not run under `swift test`).
enum DebPackage {
    private static let built = Mutex<String?>(nil)

    static func path() throws -> String {
        try built.withLock { cached in
            if let cached { return cached }
            let release = ProcessInfo.processInfo.environment["DGRID_RELEASE_BIN"]
                ?? CLI.packageRoot.appendingPathComponent(".build/release").path
            try #require(FileManager.default.isExecutableFile(atPath: release + "/dgrid-grid"),
                         "no release build in \(release): make release (make test builds it), or set DGRID_RELEASE_BIN")
            let man = try TempDir.make(prefix: "dgrid-deb-man").path
            let scripts = CLI.packageRoot.appendingPathComponent("scripts").path
            let pages = try ProcessRunner.run(scripts + "/man-pages.sh", [release, man], environment: ["MANUAL_TOOL": try InstallCLITests.manualTool()])
            try #require(pages.status == 0, "\(pages.stderr)")
            let out = try TempDir.make(prefix: "dgrid-dist").path
            let packaged = try ProcessRunner.run(scripts + "/package-deb.sh", [out], environment: ["BIN_DIR": release, "MAN_DIR": man])
            try #require(packaged.status == 0, "\(packaged.stderr)")
            let deb = packaged.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            cached = deb
            return deb
        }
    }

    static func field(_ deb: String, _ name: String) throws -> String {
        try ProcessRunner.run("/usr/bin/dpkg-deb", ["-f", deb, name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A fresh Debian 12 root from scripts/debian-root.sh: commands in it (nspawn),
/// and once booted, in it beside its systemd (nsenter).
final class DebianRoot {
    let work: String
    private static let script = CLI.packageRoot.appendingPathComponent("scripts/debian-root.sh").path
    /// Where the root sees `WORK/shared`: a path inside the container, bound by scripts/debian-root.sh.
    static let shared = "/mnt/work"

    init() throws {
        work = try TempDir.make(prefix: "dgrid-debian-root").path
        let up = try ProcessRunner.run(Self.script, ["up", work])
        try #require(up.status == 0, "\(up.stderr)")
    }

    /// `shell` in the root, not booted.
    func run(_ shell: String) throws -> ProcessResult {
        try ProcessRunner.run(Self.script, ["run", work, "sh", "-c", shell])
    }

    /// `shell` in the booted root, beside its systemd.
    func exec(_ shell: String) throws -> ProcessResult {
        try ProcessRunner.run(Self.script, ["exec", work, "sh", "-c", shell])
    }

    func install(_ deb: String) throws {
        try copyIn(deb, as: "dgrid.deb")
        // Recommends too (busybox-static for the image recipe), as `apt install` does.
        let installed = try run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q \(Self.shared)/dgrid.deb")
        try #require(installed.status == 0, "\(installed.stdout)\(installed.stderr)")
    }

    func importDefaultImage() throws {
        let imported = try run("""
            /usr/share/dgrid/images/build-busybox-image.sh /tmp/image >/dev/null && dgrid image import /tmp/image >/dev/null && \
            dgrid image allow dgrid/busybox:latest --approved-by test >/dev/null
            """)
        try #require(imported.status == 0, "\(imported.stderr)")
    }

    /// The image whose /bin/sh is Tests/probes/servicefilters.c; its name.
    func importFiltersImage() throws -> String {
        let binary = work + "/shared/servicefilters"
        let source = CLI.packageRoot.appendingPathComponent("Tests/probes/servicefilters.c").path
        let cc = try ProcessRunner.run("/usr/bin/cc", ["-static", "-O2", "-o", binary, source])
        try #require(cc.status == 0, "\(cc.stderr)")
        let built = try ProcessRunner.run(CLI.packageRoot.appendingPathComponent("images/build-busybox-image.sh").path, [work + "/shared/filters"],
                                          environment: ["IMAGE_NAME": "dgrid/filters:latest", "IMAGE_SHELL": binary])
        try #require(built.status == 0, "\(built.stderr)")
        let imported = try exec("dgrid image import \(Self.shared)/filters >/dev/null && dgrid image allow dgrid/filters:latest --approved-by test >/dev/null")
        try #require(imported.status == 0, "\(imported.stderr)")
        return "dgrid/filters:latest"
    }

    func copyIn(_ file: String, as name: String) throws {
        let target = work + "/shared/" + name
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.copyItem(atPath: file, toPath: target)
    }

    /// Writes into the root's own tree (through the overlay), creating directories.
    func writeFile(_ path: String, _ text: String, mode: Int) throws {
        let target = work + "/root" + path
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: target)
    }

    /// Task files under `DebianRoot.shared`/tasks: (id, the JSON fields after task_id).
    func writeTasks(_ tasks: [(id: String, fields: String)]) throws {
        let dir = work + "/shared/tasks"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for task in tasks {
            try Data("{\"task_id\":\"\(task.id)\",\(task.fields)}".utf8).write(to: URL(fileURLWithPath: "\(dir)/\(task.id).json"))
        }
    }

    func boot() throws {
        let booted = try ProcessRunner.run(Self.script, ["boot", work])
        try #require(booted.status == 0, "\(booted.stderr)")
    }

    /// A property of dgrid-worker@INSTANCE as systemd has it.
    func property(_ instance: String, _ name: String) throws -> String {
        try exec("systemctl show -p \(name) --value dgrid-worker@\(instance).service").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The unit's journal, messages only.
    func journal(_ instance: String, priority: String? = nil) throws -> String {
        try exec("journalctl --no-pager -o cat -u dgrid-worker@\(instance).service \(priority.map { "-p \($0)" } ?? "")").stdout
    }

    /// For failure messages: the journal (or a property), or why it could not be read.
    func journalText(_ instance: String, property name: String? = nil) -> String {
        do {
            return try name.map { try property(instance, $0) } ?? journal(instance)
        } catch {
            return "(cannot read: \(error))"
        }
    }

    func down() {
        _ = try? ProcessRunner.run(Self.script, ["down", work])
    }
}

/// A root with the package installed, the default image allowlisted,
/// unsigned tasks allowed, a grid served by `git daemon` on the host's
/// loopback (the container shares the host's network), and systemd booted.
final class ServiceRoot {
    let root: DebianRoot
    let url: String
    private let gridBase: String
    private static let daemon = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path

    init() throws {
        root = try DebianRoot()
        gridBase = try TempDir.make(prefix: "dgrid-deb-grid").path
        let port = try FreePort.loopback()
        url = "git://127.0.0.1:\(port)/grid.git"
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", gridBase + "/grid.git"]).status == 0)
        let started = try ProcessRunner.run(Self.daemon, ["start", gridBase, "\(port)"])
        try #require(started.status == 0, "\(started.stderr)")
        try root.install(try DebPackage.path())
        try root.importDefaultImage()
        let ready = try root.run("""
            mkdir -p -m 0700 /var/lib/dgrid/trust && echo 'require_signatures = false' > /var/lib/dgrid/trust/policy.toml && \
            chmod 0600 /var/lib/dgrid/trust/policy.toml && dgrid init --repo \(url) >/dev/null
            """)
        try #require(ready.status == 0, "\(ready.stderr)")
        try root.boot()
    }

    func stop() {
        root.down()
        _ = try? ProcessRunner.run(Self.daemon, ["stop", gridBase])
    }
}
