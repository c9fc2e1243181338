import AsyncHTTPClient
import Glibc
import NIOCore
import NIOHTTP1
import SandboxImages
import SandboxSupport

/// One GET whose answer's `Date` header says what time an http(s) Git server
/// thinks it is (`dgrid doctor`'s clock check, docs/ARCHITECTURE.md §12). No
/// credential is sent (a 401 carries a Date too), no redirect is followed, and
/// only the answer's head is read: the body — a ref advertisement, possibly
/// large — is dropped with the connection.
public enum ServerDateProbe {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func read(url: String, timeoutSeconds: Int64 = 10) throws(Failure) -> ServerDateReading {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw Failure(description: "\(UntrustedText.quoted(url)) is not an http(s) URL")
        }
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(timeoutSeconds), read: .seconds(timeoutSeconds)),
            decompression: .disabled)
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { try? client.syncShutdown() }
        var headers = HTTPHeaders()
        headers.add(name: "User-Agent", value: "dgrid doctor")
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: .GET, headers: headers)
        } catch {
            throw Failure(description: "cannot request \(UntrustedText.quoted(url)): \(error)")
        }
        let stream = ResponseStream(deadline: .now() + .seconds(timeoutSeconds), idleTimeout: .seconds(timeoutSeconds))
        let sentAt = now()
        stream.start(request, on: client)
        let head: HTTPResponseHead
        do {
            head = try stream.responseHead()
        } catch {
            stream.close()
            throw Failure(description: "no answer from \(UntrustedText.quoted(url)) within \(timeoutSeconds) s: \(error)")
        }
        let receivedAt = now()
        stream.close()
        return ServerDateReading(status: Int(head.status.code), date: head.headers.first(name: "Date"),
                                 sentAt: sentAt, receivedAt: receivedAt)
    }

    /// This host's wall clock, seconds since the epoch.
    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
