import CShims
import Foundation
import Glibc
import Sandbox
import Synchronization

/// The worker's `GET /metrics` (docs/ARCHITECTURE.md §12): a minimal, strict
/// HTTP/1.1 responder on one thread of its own, blocking sockets, one
/// connection at a time, every connection closed after its answer.
///
/// Why not Hummingbird (or any NIO server): a worker runs for days and its
/// idle RSS is a goal (≤ 25 MiB, bench/metrics.sh). NIO's event loops,
/// allocators and the code they fault in cost megabytes of resident memory
/// and a few milliseconds of start for one request every 15 s from one
/// Prometheus; this needs none of HTTP's features — no keep-alive, no bodies
/// in, no TLS (bind loopback, or front it with a proxy that terminates TLS).
/// What a server framework gives for free is bounded here by hand: a head of
/// at most `HTTPRequestHead.maxBytes`, a deadline for the whole head and for
/// the answer (a client that trickles a byte a second is cut off), one
/// connection at a time with a small backlog (a flood waits in the kernel's
/// queue or is refused there; it never costs a thread or a buffer per
/// connection), 404 for any other path and 405 for any other method.
public final class MetricsListener: Sendable {
    public let address: ListenAddress
    private let socket: Int32
    private let render: @Sendable () -> [UInt8]
    private let deadlineSeconds: Double
    private let stopped = Atomic<Bool>(false)
    private let served = Atomic<Int>(0)

    /// Connections waiting beyond the one being answered; the kernel refuses the rest.
    static let backlog: Int32 = 8

    /// Binds `address` and answers on a thread of its own until `stop()`.
    /// `render` makes the exposition text; it runs on the listener's thread.
    /// `deadlineSeconds` bounds reading a request's head and writing its answer, each.
    public static func start(_ address: ListenAddress, deadlineSeconds: Double = 2,
                             render: @escaping @Sendable () -> [UInt8]) throws(MetricsListenerError) -> MetricsListener {
        let fd = try bind(address)
        let listener = MetricsListener(address: address, socket: fd, render: render, deadlineSeconds: deadlineSeconds)
        let thread = Thread { listener.acceptLoop() }
        thread.name = "dgrid-metrics"
        // The loop holds a few kilobytes; the default 8 MiB stack would only be address space, but say what it needs.
        thread.stackSize = 512 << 10
        thread.start()
        return listener
    }

    private init(address: ListenAddress, socket: Int32, render: @escaping @Sendable () -> [UInt8], deadlineSeconds: Double) {
        self.address = address
        self.socket = socket
        self.render = render
        self.deadlineSeconds = deadlineSeconds
    }

    /// Requests answered so far, whatever the status (a client gone before its answer is not counted).
    public var requestsAnswered: Int { served.load(ordering: .relaxed) }

    /// Stops accepting: the thread ends after the connection it is answering.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        // Wakes the blocked accept (EINVAL on Linux); the loop closes the socket.
        Glibc.shutdown(socket, Int32(SHUT_RDWR))
    }

    private static func bind(_ address: ListenAddress) throws(MetricsListenerError) -> Int32 {
        let domain = address.family == .ipv4 ? AF_INET : AF_INET6
        let fd = Glibc.socket(domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MetricsListenerError(address: address, step: "socket", code: errno) }
        var one: Int32 = 1
        // A restarted worker rebinds while the old connections sit in TIME_WAIT; a live listener still refuses it.
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound: Int32
        if address.family == .ipv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = address.port.bigEndian
            inet_pton(AF_INET, address.host, &sin.sin_addr)
            bound = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = address.port.bigEndian
            inet_pton(AF_INET6, address.host, &sin6.sin6_addr)
            bound = withUnsafePointer(to: &sin6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw MetricsListenerError(address: address, step: "bind", code: code)
        }
        guard listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw MetricsListenerError(address: address, step: "listen", code: code)
        }
        return fd
    }

    private func acceptLoop() {
        defer { close(socket) }
        while !stopped.load(ordering: .relaxed) {
            let client = dgrid_accept_cloexec(socket)
            guard client >= 0 else {
                if stopped.load(ordering: .relaxed) { return }
                // Out of descriptors: let the rest of the worker have them back before trying again.
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { usleep(100_000) }
                continue
            }
            answer(client)
            close(client)
        }
    }

    /// Reads one head within the deadline and answers it.
    private func answer(_ client: Int32) {
        var nodelay: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &nodelay, socklen_t(MemoryLayout<Int32>.size))
        let readDeadline = Clock.monotonicMilliseconds() + deadlineSeconds * 1000
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        while true {
            if let end = HTTPRequestHead.end(in: buffer) {
                respond(to: buffer[0..<end], on: client)
                return
            }
            if buffer.count > HTTPRequestHead.maxBytes {
                write(.headerFieldsTooLarge, body: [], to: client)
                return
            }
            guard wait(client, for: Int16(POLLIN), until: readDeadline) else {
                write(.requestTimeout, body: [], to: client)
                return
            }
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(client, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }  // The client went away.
            buffer += chunk[0..<n]
        }
    }

    private func respond(to head: ArraySlice<UInt8>, on client: Int32) {
        let request: HTTPRequestHead
        do {
            request = try HTTPRequestHead.parse(head)
        } catch {
            write(error.status, body: Array("\(Self.refusalText(error))\n".utf8), to: client)
            return
        }
        guard request.path == "/metrics" else {
            write(.notFound, body: Array("only /metrics is served here\n".utf8), to: client)
            return
        }
        guard request.method == "GET" else {
            write(.methodNotAllowed, body: Array("use GET\n".utf8), to: client, extra: "Allow: GET\r\n")
            return
        }
        write(.ok, body: render(), to: client, contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    static func refusalText(_ refusal: HTTPRequestHead.Refusal) -> String {
        switch refusal {
        case .malformed(let why): "bad request: \(why)"
        case .tooLarge: "request head too large"
        case .versionNotSupported: "HTTP/1.0 or HTTP/1.1 only"
        }
    }

    private func write(_ status: HTTPStatus, body: [UInt8], to client: Int32, contentType: String = "text/plain; charset=utf-8", extra: String = "") {
        let head = "HTTP/1.1 \(status.rawValue) \(status.reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + extra + "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        bytes += body
        let writeDeadline = Clock.monotonicMilliseconds() + deadlineSeconds * 1000
        var offset = 0
        while offset < bytes.count {
            guard wait(client, for: Int16(POLLOUT), until: writeDeadline) else { return }
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
        // Counted before our FIN: a client that has read to the end sees the count that includes it.
        served.add(1, ordering: .relaxed)
        // Our side is done; the client's FIN (or the close) ends the connection.
        Glibc.shutdown(client, Int32(SHUT_WR))
    }

    /// Whether `client` is ready for `events` before `deadline` (monotonic ms).
    private func wait(_ client: Int32, for events: Int16, until deadline: Double) -> Bool {
        while true {
            let left = deadline - Clock.monotonicMilliseconds()
            guard left > 0 else { return false }
            var fd = pollfd(fd: client, events: events, revents: 0)
            let ready = poll(&fd, 1, Int32(min(left.rounded(.up), Double(Int32.max))))
            if ready < 0 && errno == EINTR { continue }
            return ready > 0
        }
    }
}

/// The listener could not be set up; the worker runs on without metrics.
public struct MetricsListenerError: Error, Sendable, CustomStringConvertible {
    public let address: ListenAddress
    public let step: String
    public let code: Int32

    public var description: String {
        let fix = switch code {
        case EADDRINUSE: "another process listens there: free the port or choose another with --metrics-listen (metrics_listen)"
        case EADDRNOTAVAIL: "no interface of this host has that address: use 127.0.0.1 or one of this host's addresses"
        case EACCES: "ports below 1024 need privilege: choose a port above 1024"
        default: "check metrics_listen"
        }
        return "metrics listener \(address): \(step): \(errnoText(code)); the worker runs without metrics (\(fix))"
    }
}
