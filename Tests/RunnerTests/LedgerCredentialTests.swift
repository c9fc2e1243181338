import Foundation
import Testing
@testable import Runner
import TestSupport

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(4)

/// Credentials reach the remote only through libgit2's credential callback and
/// never appear in URLs or errors (docs/THREATS.md "Secrets").
@Suite(.system, .serialized) struct LedgerCredentialTests {
    static let token = "ghp_Zq8xK2mN4vB7cR1tY6uW3pL9sD5fH0jA2eGx"

    @Test func tokenNeverAppearsInErrorText() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Nothing listens on this loopback port.
        let ledger = try LedgerFixtures.ledger("https://127.0.0.1:\(suitePorts[0])/grid.git", in: directory,
                                               credentials: .token(Self.token))
        let error = try #require(throws: LedgerError.self) { try ledger.remoteRefs() }
        #expect(error.kind == .network)
        #expect(!"\(error)".contains(Self.token))
        #expect("\(error)".contains("127.0.0.1:\(suitePorts[0])"), "the error still says where: \(error)")
    }

    /// A server that demands basic auth: the token arrives as the password of
    /// x-access-token, the refusal ends after one retry, and the error names the
    /// problem without the token.
    @Test func tokenIsSentByTheCallbackAndARefusalIsClear() throws {
        let server = try BasicAuthRefusingServer(port: UInt16(suitePorts[1]))
        defer { server.stop() }
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try LedgerFixtures.ledger("http://127.0.0.1:\(suitePorts[1])/grid.git", in: directory,
                                               credentials: .token(Self.token))
        let error = try #require(throws: LedgerError.self) { try ledger.remoteRefs() }
        #expect(error.kind == .authentication, "\(error)")
        #expect(!"\(error)".contains(Self.token))
        let expected = "Basic " + Data("x-access-token:\(Self.token)".utf8).base64EncodedString()
        let authorizations = server.requests.compactMap { $0.header("authorization") }
        #expect(authorizations == [expected], "the token is offered once, by the callback: \(server.requests.count) requests")
        #expect(!server.requests.contains { $0.requestLine.contains(Self.token) }, "never in the URL")
    }

    @Test func redirectsAreNotFollowed() throws {
        // A redirect could carry the token to another host. (libgit2 treats a
        // redirect to the same host, any port, as on-site; that host has the token anyway.)
        let elsewhere = try BasicAuthRefusingServer(port: UInt16(suitePorts[2]), address: "127.0.0.2")
        defer { elsewhere.stop() }
        let server = try BasicAuthRefusingServer(port: UInt16(suitePorts[3]), redirectTo: "http://127.0.0.2:\(suitePorts[2])/other.git")
        defer { server.stop() }
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try LedgerFixtures.ledger("http://127.0.0.1:\(suitePorts[3])/grid.git", in: directory,
                                               credentials: .token(Self.token))
        #expect(throws: LedgerError.self) { try ledger.remoteRefs() }
        #expect(elsewhere.requests.isEmpty)
    }

    @Test(arguments: [
        "http://user:pass@127.0.0.1/grid.git", "https://x-access-token:ghp_abcdefghijklmnop1234@github.com/o/r.git",
        "https://user@github.com/o/r.git", "git://u:p@127.0.0.1/grid.git", "ssh://git:secret@example.com/grid.git",
    ])
    func credentialsInURLsAreRefused(url: String) throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let error = try #require(throws: LedgerError.self) { try LedgerFixtures.ledger(url, in: directory) }
        #expect(error.kind == .invalidRemote)
        #expect(!"\(error)".contains("pass@") && !"\(error)".contains("secret") && !"\(error)".contains("ghp_abc"))
        if url.hasPrefix("http") { #expect("\(error)".contains("GIT_TOKEN")) }
    }

    @Test(arguments: ["ftp://example.com/grid.git", "file://relative/path", ""])
    func unusableRemotesAreRefused(url: String) throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: LedgerError.self) { try LedgerFixtures.ledger(url, in: directory) }
    }

    @Test func environmentTokenIsReadOnceAndRemoved() throws {
        setenv("GIT_TOKEN", " \(Self.token)\n", 1)
        defer { unsetenv("GIT_TOKEN") }
        guard case .token(let token) = try GitCredentials.fromEnvironment(tokenFile: nil) else {
            Issue.record("GIT_TOKEN not used")
            return
        }
        #expect(token == Self.token)
        #expect(getenv("GIT_TOKEN") == nil, "removed, so no child process inherits it")
        guard case .none = try GitCredentials.fromEnvironment(tokenFile: nil) else {
            Issue.record("read twice")
            return
        }
    }

    @Test func tokenFileMustBePrivate() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/token"
        try "\(Self.token)\n".write(toFile: file, atomically: false, encoding: .utf8)

        chmod(file, 0o644)
        let open = try #require(throws: LedgerError.self) { try GitCredentials.fromEnvironment(tokenFile: file) }
        #expect(open.kind == .credentials && "\(open)".contains("chmod 0600"))
        #expect(!"\(open)".contains(Self.token))

        chmod(file, 0o600)
        guard case .token(let token) = try GitCredentials.fromEnvironment(tokenFile: file) else {
            Issue.record("token file not used")
            return
        }
        #expect(token == Self.token)

        // A symlink in place of the file is refused, not followed.
        let link = directory + "/link"
        symlink(file, link)
        #expect(throws: LedgerError.self) { try GitCredentials.fromEnvironment(tokenFile: link) }
        // Another owner's file is refused.
        chown(file, 65534, 65534)
        #expect(throws: LedgerError.self) { try GitCredentials.fromEnvironment(tokenFile: file) }
        #expect(throws: LedgerError.self) { try GitCredentials.fromEnvironment(tokenFile: directory + "/missing") }
    }

    @Test func redactionRemovesTokenShapedText() {
        let text = "failed https://u:\(Self.token)@h/x Authorization: Bearer abc.def-ghi_jkl and glpat-abcdefghijklmnopqrst "
            + "and 9f2c4e1a7b3d5f6e8a0c2b4d6f8e0a1c3b5d7f9e stays"
        let redacted = Redaction.redact(text)
        #expect(!redacted.contains(Self.token) && !redacted.contains("abc.def-ghi_jkl") && !redacted.contains("glpat-abc"))
        #expect(redacted.contains("9f2c4e1a7b3d5f6e8a0c2b4d6f8e0a1c3b5d7f9e"), "object ids are kept")
        #expect(Redaction.redact("opaque wJalrXUtnFEMI7K7MDENGbPxRfiCYEXAMPLEKEY1 x") == "opaque *** x")
        #expect(Redaction.redact("my-secret-value here", secrets: ["my-secret-value"]) == "*** here")
    }
}

/// A minimal HTTP/1.1 server on loopback that answers every request with 401 (basic
/// auth) or a redirect, and records what it was sent. Test support only.
final class BasicAuthRefusingServer: @unchecked Sendable {
    struct Request {
        let requestLine: String
        let headers: [(String, String)]
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
    }

    private let fd: Int32
    private let lock = NSLock()
    private var recorded: [Request] = []
    private let redirect: String?
    private let done = DispatchSemaphore(value: 0)

    var requests: [Request] { lock.withLock { recorded } }

    init(port: UInt16, address: String = "127.0.0.1", redirectTo redirect: String? = nil) throws {
        self.redirect = redirect
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let addressText = address
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(addressText)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            close(fd)
            throw FixtureError("cannot listen on \(addressText):\(port): errno \(errno)")
        }
        Thread { [self] in serve() }.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        done.wait()
    }

    private func serve() {
        defer { done.signal() }
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !data.suffix(4).elementsEqual("\r\n\r\n".utf8) && data.count < 65536 {
            let count = read(client, &buffer, buffer.count)
            guard count > 0 else { return }
            data += buffer[..<count]
        }
        let lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\r\n")
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        lock.withLock { recorded.append(Request(requestLine: lines.first ?? "", headers: headers)) }
        let response = if let redirect {
            "HTTP/1.1 302 Found\r\nLocation: \(redirect)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        } else {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"dgrid-test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
        let bytes = Array(response.utf8)
        _ = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
    }
}
