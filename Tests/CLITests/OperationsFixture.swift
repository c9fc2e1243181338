import Foundation
import Testing
import TestSupport

/// What the operations tests start beside a worker (docs/ARCHITECTURE.md §12): a
/// loopback webhook receiver (scripts/webhook-receiver.py) that checks every
/// signature, Debian's prometheus (scripts/prometheus.sh), a port held by
/// another listener; and reading a worker's log.
enum OperationsFixture {
    static let secretText = "cli-test-secret-0123456789abcdef"

    struct Receiver {
        let process: Process
        let dir: String
        let port: Int
        var log: String { dir + "/requests.log" }
        var secretFile: String { dir + "/secret" }
        var url: String { "http://127.0.0.1:\(port)/hook" }

        var requests: [[String: Any]] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        /// The bodies of the requests with `type`, in order.
        func bodies(_ type: String) -> [[String: Any]] {
            requests.compactMap { $0["body"] as? [String: Any] }.filter { $0["type"] as? String == type }
        }

        /// SIGKILL: the test process may hand its children a blocked SIGTERM.
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// A receiver answering `answers` ("500,200", "hang", …); its secret file is 0600.
    static func receiver(_ answers: String = "200") throws -> Receiver {
        let dir = TestCleanup.removeAtExit(try TempDir.make(prefix: "dgrid-hooks").path)
        FileManager.default.createFile(atPath: dir + "/secret", contents: Data((secretText + "\n").utf8), attributes: [.posixPermissions: 0o600])
        let port = try FreePort.loopback()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [CLI.packageRoot.appendingPathComponent("scripts/webhook-receiver.py").path, "\(port)", dir + "/secret",
                             dir + "/requests.log", answers]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        #expect(GridFaultCLITests.waitUntil(10) { FileManager.default.fileExists(atPath: dir + "/requests.log.ready") }, "receiver did not start")
        return Receiver(process: process, dir: dir, port: port)
    }

    static var prometheusScript: String { CLI.packageRoot.appendingPathComponent("scripts/prometheus.sh").path }

    /// Debian's prometheus on `port`, scraping `target` every second; its directory.
    static func startPrometheus(port: Int, target: String) throws -> String {
        let dir = TestCleanup.removeAtExit(try TempDir.make(prefix: "dgrid-prometheus").path)
        let r = try ProcessRunner.run("/bin/bash", [prometheusScript, "start", dir, "\(port)", target])
        #expect(r.status == 0, "prometheus start: \(r.stderr)")
        return dir
    }

    static func stopPrometheus(_ dir: String) {
        _ = try? ProcessRunner.run("/bin/bash", [prometheusScript, "stop", dir])
    }

    /// An instant query through prometheus' HTTP API: each result's labels and value.
    static func query(_ port: Int, _ promql: String) throws -> [(labels: [String: String], value: Double)] {
        let r = try ProcessRunner.run("/usr/bin/curl", ["-s", "-G", "http://127.0.0.1:\(port)/api/v1/query", "--data-urlencode", "query=\(promql)"])
        guard let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
              let data = object["data"] as? [String: Any], let results = data["result"] as? [[String: Any]] else { return [] }
        return results.compactMap { result in
            guard let value = result["value"] as? [Any], value.count == 2, let text = value[1] as? String, let number = Double(text) else { return nil }
            return (result["metric"] as? [String: String] ?? [:], number)
        }
    }

    /// A listening TCP socket on a free loopback port, held until closed: "another process listens there".
    static func occupiedPort() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok, listen(fd, 4) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// `curl` of a worker's /metrics: the page, or "" when nothing answers.
    static func scrape(_ port: Int) throws -> String {
        try ProcessRunner.run("/usr/bin/curl", ["-s", "-m", "5", "http://127.0.0.1:\(port)/metrics"]).stdout
    }

    /// The first log line containing `text`'s time (the worker's text log starts with an ISO time).
    static func time(of text: String, in log: String) -> Date? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains(text) }), let stamp = line.split(separator: " ").first else { return nil }
        return ISO8601DateFormatter().date(from: String(stamp))
    }
}
