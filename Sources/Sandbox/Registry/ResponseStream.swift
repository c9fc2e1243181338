import SandboxImages
import SandboxSupport
import AsyncHTTPClient
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One HTTP response, handed from AsyncHTTPClient's event loop to a blocking
/// reader (the content store's `ByteSource` is synchronous). Body parts are
/// buffered up to `highWater` bytes; beyond that the event loop is held back
/// (backpressure) until the reader catches up, so a fast registry cannot fill
/// memory. Every wait has a deadline: an idle timeout between parts and the
/// request's total deadline, so a slow drip ends.
final class ResponseStream: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    enum Failure: Error {
        /// The transport failed (AsyncHTTPClient / NIO error).
        case transport(any Error)
        /// Nothing arrived for the idle timeout.
        case idle
        /// The total deadline passed.
        case deadline
    }

    private static let highWater = 1 << 20

    // Guarded by `condition`; value 1 = "something changed since the reader looked".
    private let condition = ConditionLock<Int>(value: 0)
    private var head: HTTPResponseHead?
    private var chunks: [ByteBuffer] = []
    private var buffered = 0
    private var finished = false
    private var failure: (any Error)?
    private var pending: EventLoopPromise<Void>?
    private var task: HTTPClient.Task<Void>?
    private var closed = false

    let deadline: NIODeadline
    let idleTimeout: TimeAmount

    init(deadline: NIODeadline, idleTimeout: TimeAmount) {
        self.deadline = deadline
        self.idleTimeout = idleTimeout
    }

    /// Starts `request` on `client` with this stream as its delegate.
    func start(_ request: HTTPClient.Request, on client: HTTPClient) {
        let task = client.execute(request: request, delegate: self, deadline: deadline)
        condition.lock()
        self.task = task
        let abandon = closed
        condition.unlock()
        if abandon { task.cancel() }
    }

    // MARK: delegate (event loop)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        condition.lock()
        self.head = head
        condition.unlock(withValue: 1)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        condition.lock()
        if closed {
            condition.unlock(withValue: 1)
            return task.eventLoop.makeSucceededVoidFuture()
        }
        chunks.append(buffer)
        buffered += buffer.readableBytes
        var future = task.eventLoop.makeSucceededVoidFuture()
        if buffered > Self.highWater {
            let promise = task.eventLoop.makePromise(of: Void.self)
            pending = promise
            future = promise.futureResult
        }
        condition.unlock(withValue: 1)
        return future
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        condition.lock()
        if failure == nil { failure = error }
        let promise = pending
        pending = nil
        condition.unlock(withValue: 1)
        promise?.fail(error)
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        condition.lock()
        finished = true
        condition.unlock(withValue: 1)
    }

    /// The request's body advanced (an upload): a reader waiting for the
    /// response starts its idle timeout again — the registry answers only once
    /// it has the whole body, and a slow link must not look like a silent one.
    func noteProgress() {
        condition.lock()
        condition.unlock(withValue: 1)
    }

    // MARK: reader (blocking)

    /// Waits until `ready` holds for the state (checked under the lock).
    private func wait<T>(_ ready: () -> T?) throws(Failure) -> T {
        while true {
            let remaining = deadline - .now()
            guard remaining > .zero else { throw .deadline }
            let timeout = min(remaining, idleTimeout)
            guard condition.lock(whenValue: 1, timeoutSeconds: Double(timeout.nanoseconds) / 1e9) else {
                throw timeout == remaining ? .deadline : .idle
            }
            if let value = ready() {
                condition.unlock(withValue: 1)
                return value
            }
            if let failure {
                condition.unlock(withValue: 1)
                if let error = failure as? HTTPClientError, error == .deadlineExceeded { throw .deadline }
                throw .transport(failure)
            }
            condition.unlock(withValue: 0)
        }
    }

    /// The response head (status and headers).
    func responseHead() throws(Failure) -> HTTPResponseHead {
        try wait { head }
    }

    /// Up to `buffer.count` body bytes; 0 at the end of the body.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        let (count, promise): (Int, EventLoopPromise<Void>?) = try wait { () -> (Int, EventLoopPromise<Void>?)? in
            if chunks.isEmpty { return finished ? (0, nil) : nil }
            var chunk = chunks[0]
            let n = min(buffer.count, chunk.readableBytes)
            chunk.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            }
            chunk.moveReaderIndex(forwardBy: n)
            if chunk.readableBytes == 0 { chunks.removeFirst() } else { chunks[0] = chunk }
            buffered -= n
            var release: EventLoopPromise<Void>?
            if buffered <= Self.highWater / 2 {
                release = pending
                pending = nil
            }
            return (n, release)
        }
        promise?.succeed(())
        return count
    }

    /// Reads the whole body into memory; more than `limit` bytes is `nil`
    /// (the rest is not read).
    func readAll(limit: Int) throws(Failure) -> [UInt8]? {
        var out: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let result: Result<Int, Failure> = scratch.withUnsafeMutableBytes { buffer in
                do throws(Failure) {
                    return .success(try read(into: buffer))
                } catch {
                    return .failure(error)
                }
            }
            let n = try result.get()
            if n == 0 { return out }
            guard out.count + n <= limit else { return nil }
            out.append(contentsOf: scratch[0..<n])
        }
    }

    /// Stops the request (if still running) and releases the event loop.
    /// Idempotent; call when done with the response, read or not.
    func close() {
        condition.lock()
        let wasClosed = closed
        closed = true
        let done = finished || failure != nil
        let task = self.task
        let promise = pending
        pending = nil
        chunks.removeAll()
        buffered = 0
        condition.unlock(withValue: 1)
        promise?.succeed(())
        if !wasClosed && !done { task?.cancel() }
    }
}
