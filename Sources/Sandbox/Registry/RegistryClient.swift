import SandboxImages
import SandboxSupport
import AsyncHTTPClient
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The OCI distribution API for one repository, over HTTP(S) with
/// AsyncHTTPClient, used synchronously (the content store's `ByteSource` is):
/// pulls, and the push side of task artifacts (`RegistryClient+Push.swift`).
///
/// - TLS is always verified; plain HTTP only when `RegistryLocation.scheme`
///   says so (`--insecure`, or `insecure-registries` in the configuration).
/// - Auth: anonymous first; on 401 the `WWW-Authenticate` challenge decides:
///   `Bearer` → a token from the realm (http(s) only; https when the registry
///   is https) for `pull`, or `pull,push` when the client was made to push
///   (`Access`), sent with Basic credentials when configured; `Basic` → the
///   configured credentials. Authorization goes only to the registry's own
///   origin (and the realm's): redirects elsewhere (blob storage) carry none.
/// - Redirects are followed by hand (at most `maxRedirects`, never https →
///   http), so the rule above holds.
/// - Retries (`attempts`, backoff ×2 with jitter) on 5xx, connection
///   failures, resets and idle timeouts; never on 4xx or on content errors.
/// - Bounded: documents ≤ 4 MiB, blobs ≤ their descriptor's size (streamed
///   into `ContentStore.ingest`, which also checks the digest), a deadline per
///   request (blobs: `blobDeadline + size / minimumRate`).
public final class RegistryClient: Sendable {
    public struct Options: Sendable {
        /// Plain HTTP allowed for this registry (`--insecure`).
        public var insecure: Bool
        public var configuration: RegistryConfiguration
        public var connectTimeout: Int64 = 10
        /// Longest silence while a response is read, in seconds.
        public var idleTimeout: Int64 = 30
        /// Total time for a manifest, index or token, in seconds.
        public var documentDeadline: Int64 = 60
        /// A blob gets `blobDeadline` seconds plus its size at `minimumRate` bytes/s.
        public var blobDeadline: Int64 = 60
        public var minimumRate: Int64 = 64 * 1024
        public var attempts = 3
        public var retryDelayMilliseconds: UInt32 = 200
        public var maxRedirects = 5

        public init(insecure: Bool = false, configuration: RegistryConfiguration = RegistryConfiguration()) {
            self.insecure = insecure
            self.configuration = configuration
        }
    }

    /// Accept header for manifests: OCI and Docker v2 schema 2, manifests and indexes.
    static let manifestAccept = [OCIMediaType.ociIndex, OCIMediaType.ociManifest,
                                 OCIMediaType.dockerManifestList, OCIMediaType.dockerManifest].joined(separator: ", ")
    static let tokenLimit = 1 << 20
    static let errorBodyLimit = 64 * 1024

    /// What the client is for: the token scope it asks for.
    public enum Access: Sendable {
        case pull
        /// `pull,push`: artifacts are pushed (docs/ARCHITECTURE.md §10).
        case push
    }

    public let location: RegistryLocation
    public let options: Options
    public let access: Access
    private let credentials: RegistryCredentials?
    private let registryURL: RegistryURL
    private let http: HTTPClient
    private let authorization = Mutex<String?>(nil)
    private let secrets = Mutex<[String]>([])

    /// A client for `repository` (an `ImageReference.repository`). Plain HTTP
    /// when `options.insecure` or the registry is listed as insecure.
    public init(repository: String, options: Options, access: Access = .pull) throws(RegistryError) {
        let insecure = options.insecure || options.configuration.isInsecure(
            RegistryLocation(repository: repository, insecure: false).registry)
        let location = RegistryLocation(repository: repository, insecure: insecure)
        guard let base = RegistryURL(location.base) else {
            throw .image(.invalidReference(text: repository, reason: "no usable registry host"))
        }
        self.location = location
        self.options = options
        self.access = access
        registryURL = base
        credentials = options.configuration.credentials(for: location.registry)
        if let credentials {
            secrets.withLock { $0 = [credentials.password, String(credentials.basicAuthorization.dropFirst(6))] }
        }
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(options.connectTimeout), read: .seconds(options.idleTimeout)),
            decompression: .disabled)
        configuration.httpVersion = .automatic
        // Retries are ours (bounded, with backoff); the pool's own would keep
        // re-connecting until the connect timeout on every refusal.
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes connections. Call once when done (the client is unusable after).
    public func shutdown() {
        try? http.syncShutdown()
    }

    var host: String { location.registry }

    // MARK: - API

    /// A manifest or index by tag or digest: its bytes, the media type the
    /// registry declared (when it is one dgrid knows), and `Docker-Content-Digest`.
    func manifest(_ reference: String) throws(RegistryError) -> (bytes: [UInt8], mediaType: String?, headerDigest: String?) {
        let what = "manifest \(location.repository)\(reference.hasPrefix("sha256:") ? "@" : ":")\(reference)"
        return try withRetries { () throws(Attempt) -> ([UInt8], String?, String?) in
            let (stream, head) = try open(location.manifestURL(reference), accept: Self.manifestAccept, what: what,
                                          deadline: .now() + .seconds(options.documentDeadline))
            defer { stream.close() }
            let limit = ContentStore.documentLimit
            let digest = try? Digest(parsing: reference)
            if let length = head.headers.first(name: "Content-Length").flatMap({ Int64($0) }), length > Int64(limit) {
                throw Attempt(.image(.blobTooLarge(digest: digest, what: "manifest", size: length, limit: Int64(limit))))
            }
            guard let bytes = try read(stream, limit: limit, what: what) else {
                throw Attempt(.image(.blobTooLarge(digest: digest, what: "manifest", size: Int64(limit) + 1, limit: Int64(limit))))
            }
            let contentType = head.headers.first(name: "Content-Type")?.split(separator: ";").first
                .map { String($0.filter { $0 != " " && $0 != "\t" }) }
            let known = contentType.flatMap { OCIMediaType.manifestTypes.contains($0) || OCIMediaType.indexTypes.contains($0) ? $0 : nil }
            return (bytes, known, head.headers.first(name: "Docker-Content-Digest"))
        }
    }

    /// Streams blob `descriptor` into `store`, verified by digest and size.
    /// `progress(received)` is called as bytes arrive.
    func fetchBlob(_ descriptor: Descriptor, into store: ContentStore,
                   progress: ((Int64) -> Void)? = nil) throws(RegistryError) {
        let what = "blob \(descriptor.digest)"
        let seconds = options.blobDeadline + descriptor.size / max(options.minimumRate, 1)
        try withRetries { () throws(Attempt) in
            let (stream, head) = try open(location.blobURL(descriptor.digest), accept: nil, what: what,
                                          deadline: .now() + .seconds(seconds))
            defer { stream.close() }
            if let length = head.headers.first(name: "Content-Length").flatMap({ Int64($0) }), length > descriptor.size {
                throw Attempt(.image(.tooLong(digest: descriptor.digest, expectedSize: descriptor.size)))
            }
            var source = StreamSource(stream: stream, description: "registry \(host)", progress: progress)
            do throws(ImageError) {
                try store.ingest(from: &source, expected: descriptor.digest, size: descriptor.size)
            } catch {
                if let failure = source.failure { throw classify(failure, what: what, seconds: seconds) }
                throw Attempt(.image(error))
            }
        }
    }

    // MARK: - requests

    /// A failed attempt and whether another may help.
    struct Attempt: Error {
        let error: RegistryError
        let retryable: Bool

        init(_ error: RegistryError, retryable: Bool = false) {
            self.error = error
            self.retryable = retryable
        }
    }

    func withRetries<T>(_ body: () throws(Attempt) -> T) throws(RegistryError) -> T {
        var attempt = 1
        while true {
            do {
                return try body()
            } catch {
                guard error.retryable, attempt < options.attempts else { throw error.error }
                let base = options.retryDelayMilliseconds << UInt32(attempt - 1)
                usleep((base + UInt32.random(in: 0...(base / 2))) * 1000)
                attempt += 1
            }
        }
    }

    /// Sends `method` to `url` (with `body`) and returns the stream of a 2xx
    /// response: authenticating on a 401 from the registry and following
    /// redirects (see the type; a request with a body only by 307 and 308, which
    /// keep the method). The caller must `close()` the stream.
    func open(_ urlText: String, method: HTTPMethod = .GET, body: RegistryRequestBody = .none, contentType: String? = nil,
              accept: String?, what: String, deadline: NIODeadline,
              registryAuth: Bool = true, basicTo realm: RegistryURL? = nil) throws(Attempt) -> (ResponseStream, HTTPResponseHead) {
        guard var url = RegistryURL(urlText) else { throw Attempt(.redirect(host: host, reason: "unusable URL")) }
        var redirects = 0
        var authenticated = false
        while true {
            var headers = HTTPHeaders()
            headers.add(name: "User-Agent", value: "dgrid")
            if let accept { headers.add(name: "Accept", value: accept) }
            if let contentType { headers.add(name: "Content-Type", value: contentType) }
            if registryAuth, url.origin == registryURL.origin, let value = authorization.withLock({ $0 }) {
                headers.add(name: "Authorization", value: value)
            } else if let realm, url.origin == realm.origin, let credentials {
                headers.add(name: "Authorization", value: credentials.basicAuthorization)
            }
            // The stream first: a body being sent counts as activity, so a long upload is not an idle wait for the answer.
            let stream = ResponseStream(deadline: deadline, idleTimeout: .seconds(options.idleTimeout))
            let request: HTTPClient.Request
            do {
                request = try HTTPClient.Request(url: url.description, method: method, headers: headers,
                                                 body: body.httpBody(onProgress: { stream.noteProgress() }))
            } catch {
                throw Attempt(.connection(host: host, message: "\(what): cannot request \(url.origin): \(error)"))
            }
            stream.start(request, on: http)
            let head: HTTPResponseHead
            do {
                head = try stream.responseHead()
            } catch {
                stream.close()
                throw classify(error, what: what, seconds: Int64((deadline - .now()).nanoseconds / 1_000_000_000))
            }
            let status = Int(head.status.code)
            switch status {
            case 200..<300:
                return (stream, head)
            case 301, 302, 303, 307, 308:
                stream.close()
                redirects += 1
                guard redirects <= options.maxRedirects else {
                    throw Attempt(.redirect(host: host, reason: "\(what): more than \(options.maxRedirects) redirects"))
                }
                guard method == .GET || method == .HEAD || status == 307 || status == 308 else {
                    throw Attempt(.redirect(host: host, reason: "\(what): HTTP \(status) to a \(method) would drop its body"))
                }
                guard let location = head.headers.first(name: "Location"), let next = url.resolve(location) else {
                    throw Attempt(.redirect(host: host, reason: "\(what): HTTP \(status) without a usable http(s) Location"))
                }
                if url.scheme == "https" && next.scheme != "https" {
                    throw Attempt(.redirect(host: host, reason: "\(what): from https to plain http (\(next.origin))"))
                }
                url = next
            case 401 where registryAuth && url.origin == registryURL.origin && !authenticated:
                let challenge = head.headers.first(name: "WWW-Authenticate")
                stream.close()
                try authenticate(challenge: challenge, what: what)
                authenticated = true
            case 401, 403:
                let detail = errorDetail(stream)
                stream.close()
                let from = (registryAuth || realm != nil) && credentials != nil ? (options.configuration.path ?? "the configuration") : nil
                throw Attempt(.unauthorized(host: host, what: what, status: status, detail: detail, credentialsFrom: from))
            default:
                let detail = errorDetail(stream)
                stream.close()
                throw Attempt(.http(host: host, what: what, status: status, detail: detail), retryable: status >= 500)
            }
        }
    }

    /// Answers a 401 challenge: remembers the Authorization to send next.
    private func authenticate(challenge header: String?, what: String) throws(Attempt) {
        guard let header, let challenge = AuthChallenge.parse(header) else {
            throw Attempt(.authentication(host: host, reason: "\(what): HTTP 401 without a usable WWW-Authenticate challenge"))
        }
        switch challenge.scheme {
        case "basic":
            guard let credentials else {
                throw Attempt(.unauthorized(host: host, what: what, status: 401, detail: "basic auth required", credentialsFrom: nil))
            }
            authorization.withLock { $0 = credentials.basicAuthorization }
        case "bearer":
            let token = try fetchToken(challenge, what: what)
            authorization.withLock { $0 = "Bearer \(token)" }
        default:
            throw Attempt(.authentication(host: host, reason: "unsupported auth scheme '\(UntrustedText.shown(challenge.scheme, limit: 40))'"))
        }
    }

    /// The anonymous (or Basic-authenticated) bearer-token flow.
    private func fetchToken(_ challenge: AuthChallenge, what: String) throws(Attempt) -> String {
        guard let realmText = challenge.realm, let realm = RegistryURL(realmText) else {
            throw Attempt(.authentication(host: host, reason: "token realm is missing or not an http(s) URL"))
        }
        if location.isSecure && realm.scheme != "https" {
            throw Attempt(.authentication(host: host, reason: "token realm \(realm.origin) is plain http for an https registry"))
        }
        var parameters: [(String, String)] = []
        if let service = challenge.parameters["service"] { parameters.append(("service", service)) }
        // Pushing asks for `pull,push` whatever the challenge named (the first 401 may come from a read).
        parameters.append(("scope", access == .push ? location.pushScope : challenge.parameters["scope"] ?? location.pullScope))
        guard let url = realm.appendingQuery(parameters) else {
            throw Attempt(.authentication(host: host, reason: "token realm \(realm.origin): unusable service or scope"))
        }
        let (stream, _) = try open(url.description, accept: "application/json", what: "token for \(location.repository)",
                                   deadline: .now() + .seconds(options.documentDeadline),
                                   registryAuth: false, basicTo: credentials != nil ? realm : nil)
        defer { stream.close() }
        guard let body = try read(stream, limit: Self.tokenLimit, what: "token") else {
            throw Attempt(.authentication(host: host, reason: "token answer larger than \(Self.tokenLimit) bytes"))
        }
        struct TokenAnswer: Decodable {
            var token: String?
            var access_token: String?
        }
        guard let answer = try? JSONDecoder().decode(TokenAnswer.self, from: Data(body)),
              let token = answer.token ?? answer.access_token, !token.isEmpty else {
            throw Attempt(.authentication(host: host, reason: "token answer from \(realm.origin) has no token"))
        }
        // A token is one header value: visible ASCII only, nothing to inject.
        guard token.utf8.count <= 16 * 1024, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw Attempt(.authentication(host: host, reason: "token from \(realm.origin) is not a plain token"))
        }
        secrets.withLock { $0.append(token) }
        return token
    }

    func read(_ stream: ResponseStream, limit: Int, what: String) throws(Attempt) -> [UInt8]? {
        do {
            return try stream.readAll(limit: limit)
        } catch {
            throw classify(error, what: what, seconds: Int64((stream.deadline - .now()).nanoseconds / 1_000_000_000))
        }
    }

    /// What a registry's error body says (OCI `errors[].code/message`), or
    /// its first line; secrets redacted, one line, capped.
    func errorDetail(_ stream: ResponseStream) -> String {
        guard let body = try? stream.readAll(limit: Self.errorBodyLimit), !body.isEmpty else { return "" }
        struct ErrorBody: Decodable {
            struct Item: Decodable {
                var code: String?
                var message: String?
            }
            var errors: [Item]?
        }
        var text: String
        if let parsed = try? JSONDecoder().decode(ErrorBody.self, from: Data(body)), let items = parsed.errors, !items.isEmpty {
            text = items.prefix(3).map { [$0.code, $0.message].compactMap { $0 }.joined(separator: ": ") }.joined(separator: "; ")
        } else {
            text = String(decoding: body.prefix(200), as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        }
        return UntrustedText.shown(redact(text), limit: 200)
    }

    /// `text` with every secret this client holds replaced.
    func redact(_ text: String) -> String {
        var result = text
        for secret in secrets.withLock({ $0 }) where secret.utf8.count >= 3 {
            result = result.replacing(secret, with: "[redacted]")
        }
        return result
    }

    /// Maps a transport failure to an error, and says whether to retry.
    func classify(_ failure: ResponseStream.Failure, what: String, seconds: Int64) -> Attempt {
        switch failure {
        case .deadline:
            return Attempt(.deadline(host: host, what: what, seconds: Int(max(seconds, 0))))
        case .idle:
            return Attempt(.connection(host: host, message: "\(what): nothing received for \(options.idleTimeout) s"), retryable: true)
        case .transport(let error):
            let message = redact(Self.describe(error))
            if String(reflecting: type(of: error)).hasPrefix("NIOSSL.") {
                return Attempt(.tls(host: host, message: message))
            }
            if let error = error as? HTTPClientError {
                switch error {
                case .deadlineExceeded:
                    return Attempt(.deadline(host: host, what: what, seconds: Int(max(seconds, 0))))
                case .connectTimeout, .readTimeout, .remoteConnectionClosed, .tlsHandshakeTimeout,
                     .getConnectionFromPoolTimeout, .writeTimeout:
                    return Attempt(.connection(host: host, message: "\(what): \(message)"), retryable: true)
                default:
                    return Attempt(.connection(host: host, message: "\(what): \(message)"))
                }
            }
            // NIOConnectionError (refused, unreachable), IOError (reset), ChannelError (closed).
            return Attempt(.connection(host: host, message: "\(what): \(message)"), retryable: true)
        }
    }

    /// A transport error in a few words, without source paths or error codes.
    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError {
            return errnoText(error.errnoCode)
        }
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first {
                return "cannot connect to \(error.host):\(error.port): \(describe(first.error))"
            }
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "cannot resolve \(error.host)" }
            return "cannot connect to \(error.host):\(error.port)"
        }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connect timed out"
            case .readTimeout: return "read timed out"
            case .writeTimeout: return "write timed out"
            case .remoteConnectionClosed: return "the registry closed the connection"
            case .tlsHandshakeTimeout: return "TLS handshake timed out"
            case .getConnectionFromPoolTimeout: return "no connection in time"
            case .cancelled: return "cancelled"
            default: return UntrustedText.shown(String(describing: error), limit: 120)
            }
        }
        let text = String(describing: error)
        if text.contains("WRONG_VERSION_NUMBER") { return "the server does not speak TLS" }
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return "certificate verification failed" }
        if text.contains("HOSTNAME") || text.contains("unableToValidateCertificate") { return "the certificate does not match the host" }
        let cut = text.firstRange(of: " at /").map { String(text[..<$0.lowerBound]) } ?? text
        return UntrustedText.shown(cut, limit: 160)
    }
}

/// A response body as a `ByteSource` for the content store. Remembers the
/// transport failure so the client can tell a network error (retry) from a
/// content error (refuse).
struct StreamSource: ByteSource {
    let stream: ResponseStream
    let sourceDescription: String
    let progress: ((Int64) -> Void)?
    private(set) var failure: ResponseStream.Failure?
    private var received: Int64 = 0

    init(stream: ResponseStream, description: String, progress: ((Int64) -> Void)?) {
        self.stream = stream
        sourceDescription = description
        self.progress = progress
    }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageError) -> Int {
        do {
            let n = try stream.read(into: buffer)
            received += Int64(n)
            if n > 0 { progress?(received) }
            return n
        } catch {
            failure = error
            let message: String
            switch error {
            case .deadline: message = "deadline passed"
            case .idle: message = "nothing received"
            case .transport(let cause): message = UntrustedText.shown(String(describing: cause), limit: 200)
            }
            throw .readFailed(digest: nil, source: sourceDescription, message: message)
        }
    }
}
