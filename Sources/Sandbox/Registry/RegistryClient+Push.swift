import SandboxImages
import SandboxSupport
import Glibc
import NIOCore
import NIOHTTP1

/// The distribution API's push side and a verified read into a file, for task
/// artifacts (docs/ARCHITECTURE.md §10). Same rules as pulls (see the type):
/// credentials only to the registry's origin, never in URLs, redacted from
/// errors; retries with backoff on connection failures and 5xx; bounded.
extension RegistryClient {
    /// The blob's size when the registry has `digest` in this repository (HEAD), nil when not.
    func blobSize(_ digest: Digest) throws(RegistryError) -> Int64? {
        let what = "blob \(digest.short) (HEAD)"
        return try withRetries { () throws(Attempt) -> Int64? in
            do throws(Attempt) {
                let (stream, head) = try open(location.blobURL(digest), method: .HEAD, accept: nil, what: what,
                                              deadline: .now() + .seconds(options.documentDeadline))
                stream.close()
                return head.headers.first(name: "Content-Length").flatMap { Int64($0) } ?? -1
            } catch {
                if case .http(_, _, 404, _) = error.error { return nil }
                throw error
            }
        }
    }

    /// Uploads `body` (`size` bytes) as blob `digest`: POST to start an upload,
    /// then one PUT of the whole body with `?digest=` (a file is streamed from
    /// its descriptor: `RegistryRequestBody.file`). The registry checks the
    /// digest against what it received. A failed attempt starts a new upload.
    func uploadBlob(_ body: RegistryRequestBody, digest: Digest, size: Int64) throws(RegistryError) {
        let what = "blob \(digest.short) upload"
        let seconds = options.blobDeadline + size / max(options.minimumRate, 1)
        try withRetries { () throws(Attempt) in
            let (started, head) = try open(location.uploadURL, method: .POST, body: .bytes([]), accept: nil, what: what,
                                           deadline: .now() + .seconds(options.documentDeadline))
            started.close()
            guard let base = RegistryURL(location.uploadURL), let text = head.headers.first(name: "Location"),
                  let session = base.resolve(text), let target = session.appendingQuery([("digest", digest.description)]) else {
                throw Attempt(.http(host: host, what: what, status: Int(head.status.code), detail: "no usable Location for the upload"))
            }
            let (stream, _) = try open(target.description, method: .PUT, body: body,
                                       contentType: "application/octet-stream", accept: nil, what: what,
                                       deadline: .now() + .seconds(seconds))
            stream.close()
        }
    }

    /// PUTs a manifest under `reference` (a tag); the digest the registry
    /// answers with (`Docker-Content-Digest`), when it sends one.
    func putManifest(_ bytes: [UInt8], mediaType: String, reference: String) throws(RegistryError) -> String? {
        let what = "manifest \(location.repository):\(reference) (PUT)"
        return try withRetries { () throws(Attempt) -> String? in
            let (stream, head) = try open(location.manifestURL(reference), method: .PUT, body: .bytes(bytes), contentType: mediaType,
                                          accept: nil, what: what, deadline: .now() + .seconds(options.documentDeadline))
            stream.close()
            return head.headers.first(name: "Docker-Content-Digest")
        }
    }

    /// Blob `digest` of `size` bytes into the file `fd` (truncated first, and
    /// again on each retry), hashed as it arrives: more bytes than `size`, fewer,
    /// or other bytes are `.image(.tooLong / .truncated / .digestMismatch)` and
    /// the file is left empty. Nothing but those bytes is ever written.
    func fetchBlob(_ digest: Digest, size: Int64, into fd: Int32) throws(RegistryError) {
        let what = "blob \(digest.short)"
        let seconds = options.blobDeadline + size / max(options.minimumRate, 1)
        do throws(RegistryError) {
            try withRetries { () throws(Attempt) in
                guard ftruncate(fd, 0) == 0 else {
                    throw Attempt(.image(.system(operation: "truncate", path: "the output file", errno: errno)))
                }
                let (stream, head) = try open(location.blobURL(digest), accept: nil, what: what, deadline: .now() + .seconds(seconds))
                defer { stream.close() }
                if let length = head.headers.first(name: "Content-Length").flatMap({ Int64($0) }), length != size {
                    throw Attempt(.image(length > size ? .tooLong(digest: digest, expectedSize: size)
                                                       : .truncated(digest: digest, expectedSize: size, received: length)))
                }
                var hasher = DigestHasher()
                var received: Int64 = 0
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                while true {
                    let n: Int
                    do throws(ResponseStream.Failure) {
                        n = try stream.read(into: buffer)
                    } catch {
                        throw classify(error, what: what, seconds: seconds)
                    }
                    if n == 0 { break }
                    guard received + Int64(n) <= size else { throw Attempt(.image(.tooLong(digest: digest, expectedSize: size))) }
                    let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                    hasher.update(chunk)
                    var written = 0
                    while written < n {
                        let w = pwrite(fd, chunk.baseAddress! + written, n - written, off_t(received) + off_t(written))
                        if w < 0, errno == EINTR { continue }
                        guard w > 0 else { throw Attempt(.image(.system(operation: "write", path: "the output file", errno: errno))) }
                        written += w
                    }
                    received += Int64(n)
                }
                guard received == size else { throw Attempt(.image(.truncated(digest: digest, expectedSize: size, received: received))) }
                let actual = hasher.finalize()
                guard actual == digest else { throw Attempt(.image(.digestMismatch(expected: digest, actual: actual))) }
            }
        } catch {
            _ = ftruncate(fd, 0)
            throw error
        }
    }
}
