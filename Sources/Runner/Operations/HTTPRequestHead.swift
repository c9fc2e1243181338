/// The head of one HTTP/1.x request as the metrics listener reads it
/// (docs/ARCHITECTURE.md §12): strict, because anyone who reaches the port
/// writes these bytes. Lines end in CRLF; the method is an upper-case token;
/// the target is origin-form printable ASCII; header names are tokens with no
/// space before the colon (the ambiguity request smuggling lives on) and no
/// folded lines; HTTP/1.1 needs exactly one Host. Bodies are never read: a
/// request that announces one is refused. Anything else is an answer with a
/// status, never a guess.
public struct HTTPRequestHead: Equatable, Sendable {
    public let method: String
    /// The path without the query.
    public let path: String
    public let version: String
    /// Header names lower-cased, in order.
    public let headers: [(name: String, value: String)]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.version == rhs.version
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }

    /// The most a head may take; past it the answer is 431.
    public static let maxBytes = 8 * 1024
    static let maxHeaders = 64

    /// Why a head is refused, and the status that says so.
    public enum Refusal: Error, Equatable, Sendable {
        case malformed(String)
        case tooLarge
        case versionNotSupported

        public var status: HTTPStatus {
            switch self {
            case .malformed: .badRequest
            case .tooLarge: .headerFieldsTooLarge
            case .versionNotSupported: .versionNotSupported
            }
        }
    }

    /// Where the head ends in `bytes` (just past the blank line), or nil while incomplete.
    public static func end(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 3..<bytes.count where bytes[i] == 0x0A && bytes[i - 1] == 0x0D && bytes[i - 2] == 0x0A && bytes[i - 3] == 0x0D {
            return i + 1
        }
        return nil
    }

    /// Parses a complete head (up to and including the blank line).
    public static func parse(_ head: ArraySlice<UInt8>) throws(Refusal) -> HTTPRequestHead {
        guard head.count <= maxBytes else { throw .tooLarge }
        var lines: [ArraySlice<UInt8>] = []
        var start = head.startIndex
        var i = head.startIndex
        while i < head.endIndex {
            if head[i] == 0x0A {
                guard i > start, head[i - 1] == 0x0D else { throw .malformed("a line ends in a bare LF") }
                lines.append(head[start..<(i - 1)])
                start = i + 1
            } else if head[i] == 0x0D, i + 1 < head.endIndex, head[i + 1] != 0x0A {
                throw .malformed("a bare CR")
            }
            i += 1
        }
        guard start == head.endIndex, lines.count >= 2, lines.last?.isEmpty == true else { throw .malformed("no blank line after the head") }
        lines.removeLast()
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("the request line is not METHOD TARGET VERSION") }
        guard !parts[0].isEmpty, parts[0].count <= 16, parts[0].allSatisfy({ (0x41...0x5A).contains($0) }) else {
            throw .malformed("the method is not an upper-case token")
        }
        guard parts[1].first == UInt8(ascii: "/"), parts[1].allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw .malformed("the target is not an absolute path of printable ASCII")
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version.hasPrefix("HTTP/") else { throw .malformed("no HTTP version") }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw .versionNotSupported }
        guard lines.count <= maxHeaders else { throw .tooLarge }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let first = line.first, first != 0x20, first != 0x09 else { throw .malformed("a folded header line") }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .malformed("a header line without a colon") }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .malformed("a header name that is not a token") }
            let value = line[(colon + 1)...].drop { $0 == 0x20 || $0 == 0x09 }
            guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else { throw .malformed("a control character in a header value") }
            var trimmed = Array(value)
            while let last = trimmed.last, last == 0x20 || last == 0x09 { trimmed.removeLast() }
            headers.append((String(decoding: name, as: UTF8.self).lowercased(), String(decoding: trimmed, as: UTF8.self)))
        }
        if version == "HTTP/1.1", headers.filter({ $0.name == "host" }).count != 1 { throw .malformed("HTTP/1.1 needs exactly one Host header") }
        if headers.contains(where: { $0.name == "transfer-encoding" }) { throw .malformed("a request body (Transfer-Encoding)") }
        if headers.contains(where: { $0.name == "content-length" && $0.value != "0" }) { throw .malformed("a request body (Content-Length)") }
        let target = String(decoding: parts[1], as: UTF8.self)
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        return HTTPRequestHead(method: String(decoding: parts[0], as: UTF8.self), path: path, version: version, headers: headers)
    }

    /// RFC 9110's tchar.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}

/// The statuses the listener answers with.
public enum HTTPStatus: Int, Sendable {
    case ok = 200
    case badRequest = 400
    case notFound = 404
    case methodNotAllowed = 405
    case requestTimeout = 408
    case headerFieldsTooLarge = 431
    case versionNotSupported = 505

    public var reason: String {
        switch self {
        case .ok: "OK"
        case .badRequest: "Bad Request"
        case .notFound: "Not Found"
        case .methodNotAllowed: "Method Not Allowed"
        case .requestTimeout: "Request Timeout"
        case .headerFieldsTooLarge: "Request Header Fields Too Large"
        case .versionNotSupported: "HTTP Version Not Supported"
        }
    }
}
