import Foundation
import Glibc
import Logging
import Synchronization
import Testing
@testable import Runner

/// The service manager's notification protocol as the worker speaks it
/// (docs/ARCHITECTURE.md §12): `$NOTIFY_SOCKET` parsed once, watchdog
/// settings, the text of each datagram, the status line, and the journal's
/// stream check and priority prefixes. The worker's own datagrams on a real
/// socket are ServiceNotifyCLITests.
@Suite(.unit) struct ServiceNotifyTests {
    static let longPath = "/" + String(repeating: "a", count: 106)
    static let usable: [(String, NotifySocketAddress)] = [
        ("/run/systemd/notify", .path("/run/systemd/notify")),
        ("@/org/freedesktop/systemd1/notify/1", .abstract("/org/freedesktop/systemd1/notify/1")),
        (longPath, .path(longPath)),
    ]

    @Test(arguments: usable)
    func usableAddressesAreParsed(value: String, expected: NotifySocketAddress) throws {
        #expect(try NotifySocketAddress(parsing: value) == expected)
    }

    static let pathPastTheLimit = "/" + String(repeating: "a", count: 107)
    static let namePastTheLimit = "@" + String(repeating: "b", count: 108)
    static let unusable: [(String, NotifySocketAddress.Problem)] = [
        ("", .empty),
        ("@", .empty),
        ("notify.sock", .relative("notify.sock")),
        ("./run/notify", .relative("./run/notify")),
        ("vsock:2:1234", .unsupported("vsock:2:1234")),
        (pathPastTheLimit, .tooLong(pathPastTheLimit, bytes: 108)),
        (namePastTheLimit, .tooLong(namePastTheLimit, bytes: 108)),
    ]

    @Test(arguments: unusable)
    func unusableAddressesAreRefusedWithWhatToSet(value: String, problem: NotifySocketAddress.Problem) {
        #expect(throws: problem) { try NotifySocketAddress(parsing: value) }
        #expect(problem.description.contains("NOTIFY_SOCKET"))
    }

    /// The kernel takes an abstract name's length from the address length, so
    /// the bytes must be exactly NUL + name; a path carries its NUL.
    @Test func socketAddressBytesAreExact() {
        #expect(NotifySocketAddress.abstract("x/1").socketPathBytes == [0, 0x78, 0x2f, 0x31])
        #expect(NotifySocketAddress.path("/s").socketPathBytes == [0x2f, 0x73, 0])
        NotifySocketAddress.abstract("x/1").withSocketAddress { _, length in
            #expect(Int(length) == MemoryLayout<sa_family_t>.size + 4)
        }
    }

    @Test func watchdogPingsAtHalfTheIntervalForThisProcessOnly() throws {
        let watchdog = try #require(try ServiceWatchdog(microseconds: "10000000", forPID: nil, ownPID: 42))
        #expect(watchdog.pingInterval == 5)
        #expect(watchdog.isDue(now: 100, last: nil))
        #expect(!watchdog.isDue(now: 104.9, last: 100))
        #expect(watchdog.isDue(now: 105, last: 100))
        #expect(try ServiceWatchdog(microseconds: "10000000", forPID: "42", ownPID: 42) != nil)
        // Meant for another process (a parent that exec'd us would share our pid).
        #expect(try ServiceWatchdog(microseconds: "10000000", forPID: "7", ownPID: 42) == nil)
        #expect(try ServiceWatchdog(microseconds: nil, forPID: nil, ownPID: 42) == nil)
    }

    static let badWatchdogs: [(String, String?, ServiceWatchdog.Problem)] = [
        ("0", nil, .zero),
        ("ten", nil, .notANumber(variable: "WATCHDOG_USEC", value: "ten")),
        ("-5", nil, .notANumber(variable: "WATCHDOG_USEC", value: "-5")),
        ("1000", "me", .notANumber(variable: "WATCHDOG_PID", value: "me")),
    ]

    @Test(arguments: badWatchdogs)
    func badWatchdogSettingsAreRefused(microseconds: String, pid: String?, problem: ServiceWatchdog.Problem) {
        #expect(throws: problem) { try ServiceWatchdog(microseconds: microseconds, forPID: pid, ownPID: 42) }
    }

    /// A status built from task ids and server text stays one assignment: a
    /// newline in it would start a line of its own, `READY=1` or `MAINPID=1`.
    @Test func datagramsAreOneAssignmentPerLineAndStatusCannotAddOne() {
        let datagram = ServiceNotification.datagram([.ready, .status("unhealthy: task x\nMAINPID=1"), .watchdog])
        let lines = String(decoding: datagram, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 3, "\(lines)")
        #expect(lines.first == "READY=1")
        #expect(lines.last == "WATCHDOG=1")
        #expect(lines[1].hasPrefix("STATUS=unhealthy: task x"))
        #expect(ServiceNotification.stopping.line == "STOPPING=1")
    }

    @Test func statusLineSaysWhatTheWorkerDoesThenItsCounts() {
        var status = WorkerServiceStatus(health: .healthy, stopping: false, running: 1, slots: 2, completed: 5, failed: 1, rejected: 0)
        #expect(status.line == "claiming: 1/2 slots busy; 5 completed, 1 failed, 0 rejected")
        status.health = .unhealthy(reason: "default image dgrid/busybox:latest is not imported")
        #expect(status.line.hasPrefix("unhealthy, claiming nothing: default image dgrid/busybox:latest is not imported; 1/2"))
        status.stopping = true
        #expect(status.line.hasPrefix("stopping: claiming nothing, 1 task still running; 1/2"))
    }

    /// Unset, unreadable or someone else's: `fromEnvironment` gives no notifier, warning once when it was asked for one.
    @Test func fromEnvironmentWarnsOnceAndGivesNoNotifierForABadSocket() {
        let warnings = WarningLog()
        #expect(ServiceNotifier.fromEnvironment([:], warn: warnings.add) == nil)
        #expect(ServiceNotifier.fromEnvironment(["NOTIFY_SOCKET": "relative.sock"], warn: warnings.add) == nil)
        #expect(warnings.lines.count == 1 && warnings.lines[0].contains("relative path"), "\(warnings.lines)")
        let notifier = ServiceNotifier.fromEnvironment(["NOTIFY_SOCKET": "/nonexistent/dgrid-notify", "WATCHDOG_USEC": "bad"],
                                                       warn: warnings.add)
        #expect(notifier != nil && notifier?.watchdog == nil)
        #expect(warnings.lines.count == 2 && warnings.lines[1].contains("WATCHDOG_USEC=bad"), "\(warnings.lines)")
    }

    @Test func journalStreamMustNameStandardErrorItself() throws {
        #expect(JournalStream.identity(parsing: "64769:1234")! == (64769, 1234))
        #expect(JournalStream.identity(parsing: "64769") == nil)
        #expect(JournalStream.identity(parsing: "a:b") == nil)
        let path = NSTemporaryDirectory() + "dgrid-journal-\(UUID().uuidString.prefix(8))"
        FileManager.default.createFile(atPath: path, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let descriptor = open(path, O_WRONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var status = stat()
        fstat(descriptor, &status)
        #expect(JournalStream.isConnected(descriptor, journalStream: "\(status.st_dev):\(status.st_ino)"))
        // Inherited from a parent whose stream it was: another file.
        #expect(!JournalStream.isConnected(descriptor, journalStream: "\(status.st_dev):\(status.st_ino + 1)"))
        #expect(!JournalStream.isConnected(descriptor, journalStream: nil))
    }

    @Test func levelsMapToSyslogPriorities() {
        let prefixes = [Logger.Level.trace, .debug, .info, .notice, .warning, .error, .critical].map(JournalStream.priorityPrefix)
        #expect(prefixes == ["<7>", "<7>", "<6>", "<5>", "<4>", "<3>", "<2>"])
    }
}

/// Warnings a notifier reports, kept for the test to read.
private final class WarningLog: Sendable {
    private let stored = Mutex<[String]>([])
    var lines: [String] { stored.withLock { $0 } }
    var add: @Sendable (String) -> Void { { [self] line in stored.withLock { $0.append(line) } } }
}
