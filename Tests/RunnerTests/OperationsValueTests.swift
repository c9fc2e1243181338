import Foundation
import Testing
import TestSupport
@testable import Runner

/// The values the operations side parses at its edges (docs/ARCHITECTURE.md §12):
/// a listen address, a webhook URL, a webhook secret; and the signature and
/// retry arithmetic. Bad input fails at parse time, with what to write instead.
@Suite(.unit)
struct OperationsValueTests {
    @Test func listenAddressesAreIPLiteralsWithAPort() throws {
        #expect(try ListenAddress(parsing: "127.0.0.1:9464").description == "127.0.0.1:9464")
        #expect(try ListenAddress(parsing: "127.0.0.1:9464").isLoopback)
        let v6 = try ListenAddress(parsing: "[::1]:9464")
        #expect(v6.family == .ipv6 && v6.isLoopback && v6.description == "[::1]:9464")
        #expect(try !ListenAddress(parsing: "0.0.0.0:9464").isLoopback)
        for bad in ["localhost:9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:94a", "::1:9464", "[::1]9464", "[nothost]:1", "1.2.3:80", ""] {
            #expect(throws: ListenAddressError.self, "\(bad)") { try ListenAddress(parsing: bad) }
        }
        #expect(throws: ListenAddressError.self) { try ListenAddress(parsing: "localhost:9464") }
        do {
            _ = try ListenAddress(parsing: "localhost:9464")
        } catch {
            #expect(error.description.contains("names are not resolved"), "\(error)")
        }
    }

    @Test func webhookURLsAreHTTPOrHTTPSWithNoCredentials() throws {
        let url = try WebhookURL(parsing: "https://Hooks.Example.com:8443/dgrid/events?team=ops")
        #expect(url.scheme == .https && url.host == "hooks.example.com" && url.port == 8443 && url.target == "/dgrid/events?team=ops")
        #expect(try WebhookURL(parsing: "http://127.0.0.1:8080").target == "/")
        #expect(try WebhookURL(parsing: "http://[::1]:8080/x").description == "http://[::1]:8080/x")
        let refused: [(String, String)] = [
            ("http://user:pass@hooks.example/x", "user-info"), ("ftp://hooks.example/", "http or https"), ("hooks.example/x", "no scheme"),
            ("http://hooks.example/x#frag", "fragment"), ("http://hooks.example/a b", "printable ASCII"), ("http://hooks.example:0/", "port"),
            ("http://hooks.example:99999/", "port"), ("http://-bad-.example/", "DNS name"), ("http:///path", "DNS name"),
            ("http://hooks.example/\u{7}", "printable ASCII"), ("http://" + String(repeating: "a", count: 2_100), "longer than"),
        ]
        for (text, why) in refused {
            do {
                _ = try WebhookURL(parsing: text)
                Issue.record("\(text) parsed")
            } catch {
                #expect(error.description.contains(why), "\(text): \(error)")
                #expect(!error.description.contains("pass"), "a password in a refused URL is never shown: \(error)")
            }
        }
    }

    /// RFC 4231, test case 2: the same HMAC-SHA256 any receiver computes.
    @Test func theSignatureIsHMACSHA256OfTheBody() throws {
        let digest = WebhookSignature.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(digest.map { String(format: "%02x", $0) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let secret = try WebhookSecret(bytes: Array("0123456789abcdef0123".utf8))
        let body = Array(#"{"id":"evt_1"}"#.utf8)
        let value = WebhookSignature.value(body: body, secret: secret)
        #expect(value == "sha256=" + WebhookSignature.hmacSHA256(key: secret.bytes, message: body).map { String(format: "%02x", $0) }.joined())
        #expect(!"\(secret)".contains("0123456789"), "a secret never prints its bytes")
    }

    @Test func eventBodiesCarryTheirIDAndTimeAndAreCapped() throws {
        let event = WebhookEvent(kind: .nodeUnhealthy, time: Date(timeIntervalSince1970: 1_800_000_000), source: ["kind": "worker"],
                                 data: ["reason": WebhookEvent.text(String(repeating: "x", count: 5_000))])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(event.body)) as? [String: Any])
        #expect(object["id"] as? String == event.id && event.id.hasPrefix("evt_") && event.id.count == 36)
        #expect(object["type"] as? String == "node.unhealthy" && object["time"] as? String == "2027-01-15T08:00:00Z")
        #expect(((object["data"] as? [String: Any])?["reason"] as? String)?.count ?? 0 <= WebhookEvent.textLimit + 1)
        #expect(WebhookEvent.newID() != WebhookEvent.newID())
    }

    @Test func secretsComeFromAPrivateFileOnly() throws {
        let dir = try TempDir.make(prefix: "dgrid-secret").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = dir + "/good", open = dir + "/open", short = dir + "/short", link = dir + "/link"
        FileManager.default.createFile(atPath: good, contents: Data("a-secret-of-twenty-four!\n".utf8), attributes: [.posixPermissions: 0o600])
        FileManager.default.createFile(atPath: open, contents: Data("a-secret-of-twenty-four!\n".utf8), attributes: [.posixPermissions: 0o644])
        FileManager.default.createFile(atPath: short, contents: Data("short\n".utf8), attributes: [.posixPermissions: 0o600])
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: good)
        #expect(try WebhookSecret.load(file: good)?.bytes == Array("a-secret-of-twenty-four!".utf8), "the trailing newline is not the key")
        for (path, why) in [(open, "chmod 0600"), (short, "at least 16"), (link, "symlink"), (dir + "/missing", "No such file")] {
            do {
                _ = try WebhookSecret.load(file: path)
                Issue.record("\(path) loaded")
            } catch {
                #expect(error.description.contains(why), "\(path): \(error)")
            }
        }
    }

    @Test func retriesBackOffWithJitterInsideTheirBounds() {
        let policy = WebhookRetryPolicy()
        for attempt in 1...10 {
            let backoff = min(policy.ceilingSeconds, policy.baseSeconds * Double(1 << (attempt - 1)))
            #expect(policy.delay(afterAttempt: attempt, unit: 0) == backoff / 2)
            #expect(policy.delay(afterAttempt: attempt, unit: 0.999_999) <= backoff)
        }
        // The worst case one event costs the delivery thread (every attempt times out, every wait is
        // longest) stays inside the total bound: the attempts run out first.
        var worst = policy.attemptTimeoutSeconds
        for attempt in 1..<policy.maxAttempts { worst += policy.delay(afterAttempt: attempt, unit: 1) + policy.attemptTimeoutSeconds }
        #expect(worst <= policy.totalSeconds, "\(worst) s")
        #expect(WebhookRetryPolicy.isRetryable(status: 500) && WebhookRetryPolicy.isRetryable(status: 503) && WebhookRetryPolicy.isRetryable(status: 429))
        #expect(!WebhookRetryPolicy.isRetryable(status: 400) && !WebhookRetryPolicy.isRetryable(status: 401) && !WebhookRetryPolicy.isRetryable(status: 302))
    }

    @Test func onlySecurityEventsOfTheAuditLogBecomeWebhooks() {
        let sent = AuditEvent.Kind.allCases.filter(\.isSecurityEvent).map(\.rawValue)
        #expect(sent.contains("signature_refused") && sent.contains("egress_blocked") && sent.contains("seccomp_killed"))
        #expect(!sent.contains("signature_accepted") && !sent.contains("quota_deferred") && !sent.contains("unsigned_run"))
    }
}
