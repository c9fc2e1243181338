import Foundation
import Synchronization
import Testing
import TestSupport

/// docs/THREATS.md T1: nothing of the worker is reachable from a task. The
/// attack is a hostile image's first instruction: open pid 1's environ, mem
/// and exe while pid 1 may still be a copy of the worker (it was, until its
/// task's execve, and it read a marker out of dgrid's environment in 17 of 40
/// runs as `--user 0:0` before dgrid-init). Every mapping a task can get.
@Suite(.system, .serialized, .enabled(if: getuid() == 0, "switches to unprivileged users"))
struct Pid1ExposureCLITests {
    enum Mapping: String, CaseIterable, CustomTestStringConvertible {
        case rootWorkerRootTask, rootWorkerUserTask, oneIDRootTask, oneIDUserTask, subordinateRootTask
        var testDescription: String { rawValue }
    }

    static let marker = "dgrid-secret-\(UUID().uuidString.prefix(12))"
    private static let peekRootfs = Mutex<String?>(nil)

    /// The busybox rootfs with the static probe as /bin/peek, readable by everyone.
    static func rootfs() throws -> String {
        try peekRootfs.withLock { cached in
            if let cached { return cached }
            let dir = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-peek-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            let copy = try ProcessRunner.run("/bin/cp", ["-a", try CLI.rootfs(), dir + "/rootfs"])
            #expect(copy.status == 0, "\(copy.stderr)")
            let source = CLI.packageRoot.appendingPathComponent("Tests/probes/pid1peek.c").path
            let cc = try ProcessRunner.run("/usr/bin/cc", ["-static", "-O2", "-o", dir + "/rootfs/bin/peek", source])
            #expect(cc.status == 0, "\(cc.stderr)")
            cached = dir + "/rootfs"
            return dir + "/rootfs"
        }
    }

    /// Who runs dgrid, as whom the task runs, and the account the test made
    /// for it (removed by the caller).
    func invocation(_ mapping: Mapping) throws -> (user: (uid: UInt32, gid: UInt32)?, taskUser: String, account: RootlessUser?) {
        let nobody: (uid: UInt32, gid: UInt32) = (65534, 65534)
        switch mapping {
        case .rootWorkerRootTask: return (nil, "0:0", nil)
        case .rootWorkerUserTask: return (nil, "1000:1000", nil)
        case .oneIDRootTask: return (nobody, "0:0", nil)
        case .oneIDUserTask: return (nobody, "1000:1000", nil)
        case .subordinateRootTask:
            let account = try RootlessUser()
            return ((account.uid, account.gid), "0:0", account)
        }
    }

    @Test(arguments: Mapping.allCases)
    func pid1IsNeverACopyOfTheWorker(mapping: Mapping) throws {
        if mapping == .subordinateRootTask, !FileManager.default.isExecutableFile(atPath: "/usr/bin/newuidmap") { return }
        let (user, taskUser, account) = try invocation(mapping)
        defer { account?.remove() }
        let rootfs = try Self.rootfs()
        var opened: [String] = []
        for _ in 0..<40 {
            let r = try CLI.run(["sandbox", "run", "--rootfs", rootfs, "--user", taskUser, "--", "/bin/peek", Self.marker],
                                as: user, environment: ["GIT_TOKEN": Self.marker, "DGRID_TEST_MARKER": Self.marker])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.split(separator: "\n").count == 3, "\(r.stdout)")
            #expect(!r.stdout.contains("marker seen"), "the worker's environment read from inside: \(r.stdout)")
            opened += r.stdout.split(separator: "\n").filter { $0.contains("opened") }.map(String.init)
        }
        #expect(opened.isEmpty, "pid 1 opened from inside the sandbox: \(opened)")
    }

    /// pid 1 is dgrid-init from a sealed memfd: its exe is no host file, and
    /// writing it through /proc is refused.
    @Test func pid1IsTheSealedInit() throws {
        let r = try CLI.run(["sandbox", "run", "--rootfs", try Self.rootfs(), "--user", "0:0", "--",
                             "sh", "-c", "cat /proc/1/comm; cat /proc/1/cmdline | head -c 10; echo; echo x > /proc/1/exe && echo WROTE"])
        #expect(r.status != 0 || !r.stdout.contains("WROTE"), "\(r.stdout)")
        #expect(r.stdout.hasPrefix("dgrid-init\n") || r.stdout.hasPrefix("memfd:dgrid-in"), "\(r.stdout)")
        #expect(!r.stdout.contains("WROTE"))
    }

    /// The attack as the issue states it: an image whose /bin/sh is the
    /// probe and whose config says `User: 0`, run by a worker holding a
    /// GIT_TOKEN — the folded result shows all three opens refused.
    @Test func aHostileImagesShellRunByAWorkerReachesNothing() throws {
        let layout = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-peek-image-\(UUID().uuidString.prefix(8))")
        let probe = try Self.rootfs() + "/bin/peek"
        let build = try ProcessRunner.run(CLI.packageRoot.appendingPathComponent("images/build-busybox-image.sh").path, [layout],
                                          environment: ["IMAGE_NAME": "test/peek:v1", "IMAGE_SHELL": probe, "IMAGE_USER": "0"])
        #expect(build.status == 0, "\(build.stderr)")
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("image", "import", layout).status == 0)
        #expect(try home.dgrid("image", "allow", "test/peek:v1", "--approved-by", "test").status == 0)
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-peek-tasks").path
        for n in 0..<5 {
            try GridFixture.taskFile(tasks, "peek\(n)", "true", extra: ",\"image\":\"test/peek:v1\"")
        }
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try CLI.run(["worker", "--repo", url, "--node-id", "peeker", "--once"],
                                 environment: ["DGRID_HOME": home.path, "GIT_TOKEN": Self.marker])
        #expect(worker.status == 0, "\(worker.stderr)")
        for n in 0..<5 {
            let log = try GridFixture.show(repo, "tasks/completed/peeker-peek\(n).json.log")
            let record = try JSONSerialization.jsonObject(with: Data(log.utf8)) as? [String: Any] ?? [:]
            let stdout = record["stdout"] as? String ?? ""
            #expect(stdout == "environ: refused 13\nmem: refused 13\nexe: refused 13\n", "\(record)")
            #expect(!log.contains(Self.marker))
        }
    }

    /// `unsetenv` leaves the bytes where /proc/<pid>/environ shows them: the
    /// worker wipes GIT_TOKEN's value when it reads it.
    @Test func gitTokenBytesAreWipedFromTheWorkersEnvironment() throws {
        let repo = try GridFixture.bareRepository()
        let home = try ImageCLITests.Home()
        #expect(try home.dgrid("init", "--repo", "file://" + repo).status == 0)
        let log = home.path + "/worker.log"
        let worker = try GridFaultCLITests.launch(["worker", "--repo", "file://" + repo, "--node-id", "wipe"],
                                                  home: home, log: log, environment: ["GIT_TOKEN": Self.marker])
        defer { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() }
        let environ = "/proc/\(worker.processIdentifier)/environ"
        let wiped = GridFaultCLITests.waitUntil(10) {
            guard let bytes = FileManager.default.contents(atPath: environ), !bytes.isEmpty else { return false }
            return String(decoding: bytes, as: UTF8.self).contains("DGRID_HOME=")
                && !String(decoding: bytes, as: UTF8.self).contains(Self.marker)
        }
        #expect(wiped, "GIT_TOKEN's value still in \(environ); log: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
}
