import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import SandboxSupport

/// One POST of a signed webhook event for the worker (docs/ARCHITECTURE.md §12),
/// run by `dgrid-registry webhook post`: this target is where dgrid's HTTP
/// client lives (async-http-client, TLS verified), and the worker's binary
/// carries none. The worker signs and retries; this sends once and says what
/// the receiver answered. Redirects are not followed (a receiver must not
/// steer events elsewhere); the answer's body is read and thrown away, at most
/// 64 KiB of it.
public enum WebhookPoster {
    /// What the worker writes on the helper's stdin (`HelperWebhookTransport.Request`).
    public struct Request: Decodable, Sendable {
        public let url: String
        public let headers: [[String]]
        public let body: String
        public let timeoutSeconds: Double

        enum CodingKeys: String, CodingKey {
            case url, headers, body, timeoutSeconds = "timeout_seconds"
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The receiver's status, or why there was none.
    public static func post(_ request: Request) -> Result<Int, Failure> {
        guard request.url.hasPrefix("http://") || request.url.hasPrefix("https://") else {
            return .failure(Failure(description: "the URL must be http:// or https://"))
        }
        guard request.headers.allSatisfy({ $0.count == 2 }), request.timeoutSeconds > 0, request.timeoutSeconds <= 300 else {
            return .failure(Failure(description: "headers must be [name, value] pairs and the timeout 0-300 s"))
        }
        let seconds = Int64(request.timeoutSeconds.rounded(.up))
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(min(seconds, 10)), read: .seconds(seconds)),
            decompression: .disabled)
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { try? client.syncShutdown() }
        let http: HTTPClient.Request
        do {
            var headers = HTTPHeaders()
            for pair in request.headers { headers.add(name: pair[0], value: pair[1]) }
            http = try HTTPClient.Request(url: request.url, method: .POST, headers: headers, body: .string(request.body))
        } catch {
            return .failure(Failure(description: "not a request dgrid can send: \(error)"))
        }
        let task = client.execute(request: http, delegate: StatusOnly(), deadline: .now() + .seconds(seconds))
        do {
            return .success(try task.futureResult.wait())
        } catch {
            return .failure(Failure(description: UntrustedText.lineSafe("\(error)")))
        }
    }

    /// Keeps the status; reads the body into nothing.
    private final class StatusOnly: HTTPClientResponseDelegate, @unchecked Sendable {
        typealias Response = Int
        private var status = 0
        private var bodyBytes = 0
        static let bodyLimit = 64 * 1024

        func didReceiveHead(task: HTTPClient.Task<Int>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
            status = Int(head.status.code)
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didReceiveBodyPart(task: HTTPClient.Task<Int>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
            bodyBytes += buffer.readableBytes
            // The status is what matters: a receiver that streams a large answer is cut off, the status kept.
            if bodyBytes > Self.bodyLimit { task.cancel() }
            return task.eventLoop.makeSucceededVoidFuture()
        }

        func didReceiveError(task: HTTPClient.Task<Int>, _ error: any Error) {}

        func didFinishRequest(task: HTTPClient.Task<Int>) throws -> Int { status }
    }
}
