import Foundation
import Testing
import TestSupport

/// `dgrid worker` under a service manager (docs/ARCHITECTURE.md §12, "Install
/// and run as a service"): the built binary, a real grid, and the manager's
/// end of the notification socket played by the test (a Unix datagram socket
/// it reads). systemd itself runs the worker in DebPackageCLITests.
@Suite(.system, .serialized) struct ServiceNotifyCLITests {
    /// A grid with `tasks` queued and a worker home for it.
    static func grid(_ tasks: [(id: String, script: String)]) throws -> (url: String, repo: String, home: ImageCLITests.Home) {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        if !tasks.isEmpty {
            let dir = try TempDir.make(prefix: "dgrid-notify-tasks").path
            for task in tasks { try GridFixture.taskFile(dir, task.id, task.script, timeout: 60) }
            let submitted = try home.dgrid("submit", "--repo", url, dir)
            #expect(submitted.status == 0, "\(submitted.stderr)")
        }
        return (url, repo, home)
    }

    static func log(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func readinessComesAfterTheFirstSyncThenStatusWatchdogPingsAndStopping() throws {
        let (url, repo, home) = try Self.grid([("nap", "sleep 3; echo rested")])
        let listener = try NotifySocketListener(.path(try TempDir.make(prefix: "dgrid-notify").path + "/notify.sock"))
        let log = try TempDir.make(prefix: "dgrid-notify-log").path + "/worker.log"
        // Pings due every second (half of WATCHDOG_USEC).
        let worker = try GridFaultCLITests.launch(
            ["worker", "--repo", url, "--node-id", "node_n", "--slots", "1"], home: home, log: log,
            environment: ["NOTIFY_SOCKET": listener.environmentValue, "WATCHDOG_USEC": "2000000",
                          "HEARTBEAT_INTERVAL": "1", "PULL_INTERVAL": "0.3"])
        defer {
            if worker.isRunning { kill(worker.processIdentifier, SIGKILL) }
            worker.waitUntilExit()
        }

        let first = try #require(listener.receive(within: 60), "no notification at all: \(Self.log(log))")
        #expect(first.split(separator: "\n").contains("READY=1"), "\(first)")
        #expect(first.contains("STATUS=claiming: "), "\(first)")
        // Ready only once the worker has been to the grid: its node record is there.
        #expect(try GridFixture.refs(repo, "refs/dgrid/nodes/").contains("refs/dgrid/nodes/node_n"))

        var statuses: [String] = []
        var pings: [Date] = [Date()]
        func take(until done: () -> Bool, within seconds: Double) {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end, !done(), let datagram = listener.receive(within: end.timeIntervalSinceNow) {
                for line in datagram.split(separator: "\n") {
                    if line == "WATCHDOG=1" { pings.append(Date()) }
                    if line.hasPrefix("STATUS=") { statuses.append(String(line.dropFirst(7))) }
                    #expect(line != "READY=1", "readiness told twice")
                }
            }
        }
        take(until: { statuses.contains { $0.contains("1 completed") } }, within: 60)
        #expect(statuses.contains { $0.hasPrefix("claiming: 1/1 slots busy") }, "\(statuses)")
        #expect(statuses.contains { $0.contains("0/1 slots busy; 1 completed") }, "\(statuses)\n\(Self.log(log))")
        // A few more seconds idle: the pings go on while nothing happens.
        let idleFrom = pings.count
        take(until: { false }, within: 4)
        #expect(pings.count - idleFrom >= 2, "\(pings.count - idleFrom) pings in 4 s idle")
        let gaps = zip(pings.dropFirst(), pings).map { $0.timeIntervalSince($1) }
        // systemd would act at 2 s without a ping.
        #expect(gaps.allSatisfy { $0 < 2 }, "gaps between pings: \(gaps)")

        kill(worker.processIdentifier, SIGTERM)
        var stopping: String?
        let end = Date().addingTimeInterval(30)
        while stopping == nil, Date() < end, let datagram = listener.receive(within: end.timeIntervalSinceNow) {
            if datagram.split(separator: "\n").contains("STOPPING=1") { stopping = datagram }
        }
        let told = try #require(stopping, "no STOPPING=1 after SIGTERM: \(Self.log(log))")
        #expect(told.contains("STATUS=stopping: claiming nothing, 0 tasks still running"), "\(told)")
        worker.waitUntilExit()
        #expect(worker.terminationStatus == 0, "\(Self.log(log))")
    }

    /// `@name`: the abstract namespace, where systemd's own socket lives in a container.
    @Test func anAbstractSocketIsNotifiedToo() throws {
        let (url, _, home) = try Self.grid([])
        let listener = try NotifySocketListener(.abstract("dgrid-test-notify-\(UUID().uuidString.prefix(8))"))
        let ran = try CLI.run(["worker", "--repo", url, "--node-id", "node_a", "--once"],
                              environment: ["DGRID_HOME": home.path, "NOTIFY_SOCKET": listener.environmentValue])
        #expect(ran.status == 0, "\(ran.stderr)")
        let datagram = listener.receive(within: 5) ?? ""
        #expect(datagram.split(separator: "\n").contains("READY=1"), "\(datagram)\n\(ran.stderr)")
        #expect(!ran.stderr.contains("notify"), "\(ran.stderr)")
    }

    /// A value the worker cannot use costs one warning line, however many
    /// pings fail, and the worker does its work as without it.
    @Test(arguments: ["notify.sock", "/nonexistent-dgrid-dir/notify.sock"])
    func aBadNotifySocketIsOneWarningAndTheWorkerRunsOn(value: String) throws {
        let (url, repo, home) = try Self.grid([("work", "sleep 2; echo worked")])
        // Pings due every 0.1 s: a warning per failed send would show as dozens of lines.
        let ran = try CLI.run(["worker", "--repo", url, "--node-id", "node_b", "--once"],
                              environment: ["DGRID_HOME": home.path, "NOTIFY_SOCKET": value, "WATCHDOG_USEC": "200000"])
        #expect(ran.status == 0, "\(ran.stderr)")
        let warnings = ran.stderr.split(separator: "\n").filter { $0.contains("notif") }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.contains(" warning ") == true && warnings.first?.contains(value) == true, "\(warnings)")
        #expect(try GridFixture.mainFiles(repo).contains { $0.hasPrefix("tasks/completed/") && $0.contains("work") },
                "\(ran.stderr)")
    }

    /// Under systemd stderr is the journal (`$JOURNAL_STREAM` names it): each
    /// line starts with its syslog priority and carries no time of its own.
    /// A `$JOURNAL_STREAM` that names another file changes nothing.
    @Test func logLinesCarryPrioritiesAndNoTimeWhenStderrIsTheJournal() throws {
        let (url, _, home) = try Self.grid([])
        for matching in [true, false] {
            let log = try TempDir.make(prefix: "dgrid-journal").path + "/stderr"
            FileManager.default.createFile(atPath: log, contents: nil)
            let output = try #require(FileHandle(forWritingAtPath: log))
            var stream = stat()
            #expect(stat(log, &stream) == 0)
            // What systemd sets: the device and inode of the stream it connected.
            let value = "\(stream.st_dev):\(stream.st_ino + (matching ? 0 : 1))"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CLI.binary)
            process.arguments = ["worker", "--repo", url, "--node-id", "node_j", "--once"]
            process.environment = ProcessInfo.processInfo.environment.merging(["DGRID_HOME": home.path, "JOURNAL_STREAM": value]) { $1 }
            process.standardError = output
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let lines = Self.log(log).split(separator: "\n")
            let started = try #require(lines.first { $0.contains("worker started") }, "\(lines)")
            let warning = try #require(lines.first { $0.contains("unsigned tasks allowed") }, "\(lines)")
            if matching {
                #expect(started.hasPrefix("<6>info worker started "), "\(started)")
                #expect(warning.hasPrefix("<4>warning unsigned tasks allowed"), "\(warning)")
                #expect(lines.allSatisfy { $0.hasPrefix("<") }, "\(lines)")
            } else {
                // time level message: 2026-01-02T03:04:05Z info worker started
                #expect(started.split(separator: " ").dropFirst().first == "info", "\(started)")
                #expect(started.first?.isNumber == true, "\(started)")
            }
        }
    }
}
