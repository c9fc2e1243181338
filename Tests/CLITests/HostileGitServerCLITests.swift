import Foundation
import Testing
import TestSupport

/// A Git server's own words reach the user through libgit2's error message
/// (docs/THREATS.md, T13): a server that answers every request with an `ERR`
/// packet full of terminal escapes, bidi overrides and a forged log line must
/// get them printed inert, on one line.
@Suite(.system) struct HostileGitServerCLITests {
    static let hostile = "\u{1b}[2J\u{9b}31mowned\u{202e}txt.exe\u{200b}\n2026-12-04T00:00:00Z info worker stopped"

    /// A git:// server on a loopback port the kernel picked; stopped on deinit.
    final class LyingServer {
        let process = Process()
        let port: Int

        init(message: String) throws {
            let script = #"""
            import socket, sys
            message = sys.argv[1].encode()
            packet = b"ERR " + message
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(8)
            print(server.getsockname()[1], flush=True)
            while True:
                connection, _ = server.accept()
                try:
                    connection.recv(65536)
                    connection.sendall(b"%04x" % (len(packet) + 4) + packet)
                finally:
                    connection.close()
            """#
            let output = Pipe()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", script, message]
            process.standardOutput = output
            try process.run()
            let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }

        deinit {
            // SIGKILL: the child inherits the test runner's blocked signal mask, so SIGTERM would wait forever.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    @Test func aServersErrorMessageIsPrintedInert() throws {
        let server = try LyingServer(message: Self.hostile)
        try #require(server.port > 0)
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let url = "git://127.0.0.1:\(server.port)/grid.git"
        for arguments in [["status", "--repo", url], ["init", "--repo", url]] {
            let run = try home.dgrid(arguments)
            #expect(run.status != 0)
            #expect(run.stderr.contains("\\u{1b}[2J\\u{9b}31mowned\\u{202e}txt.exe\\u{200b}"), "\(run.stderr)")
            #expect(run.stderr.split(separator: "\n").count == 1, "one line, no forged second: \(run.stderr)")
            UntrustedTextCLITests.expectInert(run.stderr, "dgrid \(arguments[0])")
        }
    }
}
