import Testing
@testable import Runner

/// The metrics listener reads heads anyone who reaches its port writes
/// (docs/ARCHITECTURE.md §12, docs/THREATS.md): one row per hostile head, one
/// expected status each; nothing is guessed.
@Suite(.unit)
struct HTTPRequestHeadTests {
    static func parse(_ text: String) -> Result<HTTPRequestHead, HTTPRequestHead.Refusal> {
        Result { () throws(HTTPRequestHead.Refusal) in try HTTPRequestHead.parse(ArraySlice(Array(text.utf8))) }
    }

    @Test func aPrometheusScrapeParses() throws {
        let head = try Self.parse("GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: text/plain\r\n\r\n").get()
        #expect(head.method == "GET" && head.path == "/metrics" && head.version == "HTTP/1.1")
        #expect(head.headers.map(\.name) == ["host", "user-agent", "accept"])
        #expect(try Self.parse("GET /metrics HTTP/1.0\r\n\r\n").get().path == "/metrics", "HTTP/1.0 needs no Host")
    }

    static let hostile: [(name: String, head: String, status: HTTPStatus)] = [
        ("bare LF line ends", "GET /metrics HTTP/1.1\nHost: a\n\n", .badRequest),
        ("a bare CR", "GET /metrics HTTP/1.1\r\nHost: a\rb\r\n\r\n", .badRequest),
        ("no Host on 1.1", "GET /metrics HTTP/1.1\r\n\r\n", .badRequest),
        ("two Hosts", "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .badRequest),
        ("space before the colon (smuggling)", "GET /metrics HTTP/1.1\r\nHost : a\r\n\r\n", .badRequest),
        ("a folded header", "GET /metrics HTTP/1.1\r\nHost: a\r\n x: folded\r\n\r\n", .badRequest),
        ("a header without a colon", "GET /metrics HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", .badRequest),
        ("a control character in a value", "GET /metrics HTTP/1.1\r\nHost: a\u{01}\r\n\r\n", .badRequest),
        ("a body by length", "GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", .badRequest),
        ("a chunked body", "GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", .badRequest),
        ("a lower-case method", "get /metrics HTTP/1.1\r\nHost: a\r\n\r\n", .badRequest),
        ("an absolute-form target", "GET http://a/metrics HTTP/1.1\r\nHost: a\r\n\r\n", .badRequest),
        ("a space in the target", "GET /met rics HTTP/1.1\r\nHost: a\r\n\r\n", .badRequest),
        ("non-ASCII in the target", "GET /métrics HTTP/1.1\r\nHost: a\r\n\r\n", .badRequest),
        ("two spaces", "GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n", .badRequest),
        ("no version", "GET /metrics\r\nHost: a\r\n\r\n", .badRequest),
        ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .badRequest),
        ("HTTP/2.0 as a version", "GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", .versionNotSupported),
        ("HTTP/0.9-ish garbage", "\u{16}\u{03}\u{01}\u{02}\u{00}\r\n\r\n", .badRequest),
        ("too many headers", "GET /metrics HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-A: b\r\n", count: 70) + "\r\n", .headerFieldsTooLarge),
        ("past the size limit", "GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "a", count: 9_000) + "\r\n\r\n", .headerFieldsTooLarge),
    ]

    @Test(arguments: hostile.map(\.name))
    func hostileHeadsAreRefusedWithTheirStatus(_ name: String) throws {
        let row = try #require(Self.hostile.first { $0.name == name })
        switch Self.parse(row.head) {
        case .success(let head): Issue.record("\(name) parsed: \(head)")
        case .failure(let refusal): #expect(refusal.status == row.status, "\(name): \(refusal)")
        }
    }

    @Test func theEndOfAHeadIsTheFirstBlankLine() {
        #expect(HTTPRequestHead.end(in: Array("GET / HTTP/1.1\r\nHost: a\r\n".utf8)) == nil)
        let bytes = Array("GET / HTTP/1.1\r\n\r\nleftover".utf8)
        #expect(HTTPRequestHead.end(in: bytes) == bytes.count - "leftover".count)
    }
}
