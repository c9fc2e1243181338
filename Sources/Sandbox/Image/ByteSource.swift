import Glibc
import SandboxSupport

/// A stream of bytes the content store can ingest: a file, a tar member, and
/// (with registry pull) an HTTP body. The store never trusts the source's
/// idea of where it ends: it stops after the declared size + 1 bytes.
public protocol ByteSource {
    /// Reads up to `buffer.count` bytes; 0 means the end.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageError) -> Int
    /// Names the source in errors ("layout /x blobs/sha256/ab…", "archive a.tar member b").
    var sourceDescription: String { get }
}

/// Reads an open file descriptor (not closed here).
public struct FileDescriptorSource: ByteSource {
    public let fd: Int32
    public let sourceDescription: String

    public init(fd: Int32, description: String) {
        self.fd = fd
        self.sourceDescription = description
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageError) -> Int {
        let n = FileIO.read(fd, into: buffer)
        guard n >= 0 else { throw .readFailed(digest: nil, source: sourceDescription, message: errnoText(errno)) }
        return n
    }
}

/// Bytes already in memory (documents dgrid writes itself, tests).
public struct MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var offset = 0
    public let sourceDescription: String

    public init(_ bytes: [UInt8], description: String = "memory") {
        self.bytes = bytes
        self.sourceDescription = description
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageError) -> Int {
        let n = min(buffer.count, bytes.count - offset)
        guard n > 0 else { return 0 }
        UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]).copyBytes(from: bytes[offset..<(offset + n)])
        offset += n
        return n
    }
}
