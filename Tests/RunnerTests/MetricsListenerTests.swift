import Foundation
import Testing
import TestSupport
@testable import Runner

/// The worker's /metrics responder on a real loopback socket (docs/ARCHITECTURE.md §12,
/// docs/THREATS.md): GET /metrics answered; any other path, method or a
/// malformed or oversized head answered with its status and the connection
/// closed; a client that trickles its head cut off at the deadline, while the
/// next scrape is still answered; a port in use refused with what to do.
@Suite(.system, .serialized)
struct MetricsListenerTests {
    static func start(deadline: Double = 1) throws -> MetricsListener {
        let address = try ListenAddress(parsing: "127.0.0.1:\(try FreePort.loopback())")
        return try MetricsListener.start(address, deadlineSeconds: deadline) { Array("dgrid_test_total 7\n".utf8) }
    }

    /// Sends `bytes`, half-closes, and reads the whole answer (the listener closes after one).
    static func exchange(_ port: UInt16, _ bytes: [UInt8], halfClose: Bool = true) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if halfClose { shutdown(fd, Int32(SHUT_WR)) }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            answer += chunk[0..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }

    @Test func aScrapeIsAnsweredAndEverythingElseGetsItsStatus() throws {
        let listener = try Self.start()
        defer { listener.stop() }
        let port = listener.address.port
        let ok = try Self.exchange(port, Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\n") && ok.contains("Content-Type: text/plain; version=0.0.4") && ok.hasSuffix("\r\n\r\ndgrid_test_total 7\n"), "\(ok)")
        #expect(ok.contains("Connection: close\r\n") && ok.contains("Content-Length: 19\r\n"))
        let rows: [(String, String)] = [
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "),
            ("GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "),
            ("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 "),
            ("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 "),
            ("GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", "HTTP/1.1 400 "),
            ("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody", "HTTP/1.1 400 "),
            ("GET /metrics HTTP/3.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 "),
            ("GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 20_000) + "\r\n\r\n", "HTTP/1.1 431 "),
        ]
        var seen: [Int] = [listener.requestsAnswered]
        for (head, status) in rows {
            let answer = try Self.exchange(port, Array(head.utf8))
            seen.append(listener.requestsAnswered)
            #expect(answer.hasPrefix(status), "\(head.prefix(40)): \(answer.prefix(80))")
            #expect(!answer.contains("dgrid_test_total"), "no metrics outside GET /metrics")
        }
        #expect(try Self.exchange(port, Array("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)).contains("Allow: GET\r\n"))
        #expect(listener.requestsAnswered == rows.count + 2, "\(seen)")
    }

    /// A client that sends part of a head and stops holds the one connection only
    /// until the deadline; a scrape behind it is answered after that.
    @Test func aClientThatStallsIsCutOffAndTheNextScrapeAnswered() throws {
        let listener = try Self.start(deadline: 1)
        defer { listener.stop() }
        let port = listener.address.port
        let stalled = Thread {
            _ = try? Self.exchange(port, Array("GET /metrics HTTP/1.1\r\nHo".utf8), halfClose: false)
        }
        stalled.start()
        usleep(100_000)
        let started = Date()
        let answer = try Self.exchange(port, Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let waited = Date().timeIntervalSince(started)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer)")
        #expect(waited < 3, "the stalled client held the listener for \(waited) s, past its 1 s deadline")
    }

    @Test func aPortInUseIsRefusedWithWhatToDo() throws {
        let first = try Self.start()
        defer { first.stop() }
        do {
            _ = try MetricsListener.start(first.address) { [] }
            Issue.record("a second listener bound \(first.address)")
        } catch {
            #expect(error.code == EADDRINUSE)
            #expect(error.description.contains("Address already in use") && error.description.contains("the worker runs without metrics")
                    && error.description.contains("--metrics-listen"), "\(error)")
        }
    }

    @Test func aStoppedListenerFreesItsPort() throws {
        let listener = try Self.start()
        let address = listener.address
        listener.stop()
        #expect(ListenerWait.until(5) { (try? MetricsListener.start(address) { [] }).map { $0.stop(); return true } ?? false })
    }
}

enum ListenerWait {
    static func until(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }
}
