import Foundation
import Synchronization
import Testing
import TestSupport

/// Looks at a built dashboard the way a person does (docs/ARCHITECTURE.md §12):
/// Debian's headless Chromium driven by Selenium from PyPI
/// (scripts/selenium-venv.sh, scripts/dashboard-browser.py), the site served
/// by `python3 -m http.server` on a loopback port the kernel picked, started
/// and stopped here.
enum DashboardBrowser {
    private static let python = Mutex<String?>(nil)

    /// The venv's Python, made on first use (a fresh machine: a pip install of Selenium).
    static func venvPython() throws -> String {
        try python.withLock { cached in
            if let cached { return cached }
            let made = try ProcessRunner.run(CLI.packageRoot.appendingPathComponent("scripts/selenium-venv.sh").path, [])
            #expect(made.status == 0, "scripts/selenium-venv.sh: \(made.stderr)")
            let path = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            cached = path
            return path
        }
    }

    /// Where a test keeps what it shows a person (screenshots): kept after the run, out of git.
    static func outputDirectory(_ test: String) throws -> String {
        let dir = CLI.packageRoot.appendingPathComponent(".build/test-output/dashboard/\(test)").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A loopback web server for `directory`; stop it with `stop`.
    struct Server {
        let process: Process
        let url: String

        static func start(_ directory: String, log: String) throws -> Server {
            let port = try FreePort.loopback()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", directory, "\(port)"]
            FileManager.default.createFile(atPath: log, contents: nil)
            let output = FileHandle(forWritingAtPath: log)
            process.standardOutput = output
            process.standardError = output
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let url = "http://127.0.0.1:\(port)/"
            let up = GridFaultCLITests.waitUntil(15) {
                (try? ProcessRunner.run("/usr/bin/python3", ["-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)", url]).status) == 0
            }
            #expect(up, "python3 -m http.server did not answer on \(url)")
            return Server(process: process, url: url)
        }

        func stop() {
            guard process.isRunning else { return }
            // SIGKILL: the server inherits the test process's signal mask, which blocks SIGTERM.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// What the browser saw at `url` (scripts/dashboard-browser.py's report); screenshots at `prefix`-phone.png and -desktop.png.
    static func look(at url: String, screenshots prefix: String) throws -> [String: Any] {
        let script = CLI.packageRoot.appendingPathComponent("scripts/dashboard-browser.py").path
        let seen = try ProcessRunner.run(try venvPython(), [script, url, prefix])
        #expect(seen.status == 0, "dashboard-browser.py: \(seen.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(seen.stdout.utf8)) as? [String: Any] ?? [:]
        for path in report["screenshots"] as? [String] ?? [] {
            // The test log names them, for a person to open.
            print("dashboard screenshot: \(path)")
        }
        return report
    }

    /// Browser log entries at error level (console errors, refused loads, CSP violations).
    static func errors(_ report: [String: Any]) -> [[String: Any]] {
        (report["console"] as? [[String: Any]] ?? []).filter { ($0["level"] as? String) == "SEVERE" }
    }
}
