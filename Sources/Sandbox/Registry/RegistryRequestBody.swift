import SandboxSupport
import AsyncHTTPClient
import Dispatch
import Glibc
import NIOCore
import NIOPosix

/// What a request sends. A blob is streamed from its file as it is sent — a
/// 1 GiB artifact never sits in memory: a reader thread `pread`s it a chunk at
/// a time, at most `window` chunks ahead of the connection (each write's future
/// is the backpressure). Each attempt (a retry, a 401 answered) reads it again
/// from the start, so a body can be sent more than once.
enum RegistryRequestBody: Sendable {
    case none
    case bytes([UInt8])
    /// `size` bytes of the regular file `fd`, from offset 0; the caller keeps `fd` open until the request ends.
    case file(fd: Int32, size: Int64)

    static let chunkSize = 1 << 20
    static let window = 8

    /// A file that ended early or could not be read while it was sent.
    struct ReadFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// `onProgress`: called each time a chunk of a file has been taken by the connection.
    func httpBody(onProgress: @escaping @Sendable () -> Void = {}) -> HTTPClient.Body? {
        switch self {
        case .none:
            return nil
        case .bytes(let bytes):
            return .bytes(bytes)
        case .file(let fd, let size):
            return .stream(contentLength: size) { writer in
                let promise = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: Void.self)
                DispatchQueue.global().async {
                    Self.send(fd: fd, size: size, to: writer, promise: promise, onProgress: onProgress)
                }
                return promise.futureResult
            }
        }
    }

    /// Reads `fd` into `writer` a chunk at a time, off the event loop.
    private static func send(fd: Int32, size: Int64, to writer: HTTPClient.Body.StreamWriter, promise: EventLoopPromise<Void>,
                             onProgress: @Sendable () -> Void) {
        var offset: Int64 = 0
        var inFlight: [EventLoopFuture<Void>] = []
        do {
            while offset < size {
                let want = Int(min(Int64(chunkSize), size - offset))
                var buffer = ByteBufferAllocator().buffer(capacity: want)
                var failure: Int32 = 0
                let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { raw -> Int in
                    while true {
                        let n = pread(fd, raw.baseAddress, want, off_t(offset))
                        if n < 0, errno == EINTR { continue }
                        if n < 0 { failure = errno }
                        return max(n, 0)
                    }
                }
                guard got > 0 else {
                    throw ReadFailure(description: failure != 0 ? "reading the file at byte \(offset): \(errnoText(failure))"
                                      : "the file ended at byte \(offset) of \(size)")
                }
                offset += Int64(got)
                inFlight.append(writer.write(.byteBuffer(buffer)))
                if inFlight.count >= window {
                    try inFlight.removeFirst().wait()
                    onProgress()
                }
            }
            for future in inFlight {
                try future.wait()
                onProgress()
            }
            promise.succeed(())
        } catch {
            promise.fail(error)
        }
    }
}
