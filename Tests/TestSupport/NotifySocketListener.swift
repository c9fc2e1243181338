import Foundation
import Glibc

/// The service manager's end of sd_notify(3) for tests: a Unix datagram
/// socket bound to a path or an abstract name, read one datagram at a time.
/// What systemd does with the datagrams is not imitated; the tests read them.
public final class NotifySocketListener {
    public enum Name { case path(String), abstract(String) }

    /// The value to give as `$NOTIFY_SOCKET`.
    public let environmentValue: String
    private let descriptor: Int32
    private let boundPath: String?

    public init(_ name: Name) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes: [UInt8]
        switch name {
        case .path(let path):
            bytes = Array(path.utf8) + [0]
            environmentValue = path
            boundPath = path
        case .abstract(let name):
            bytes = [0] + Array(name.utf8)
            environmentValue = "@" + name
            boundPath = nil
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else {
            let code = errno
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    deinit {
        close(descriptor)
        if let boundPath { unlink(boundPath) }
    }

    /// The next datagram as text, or nil when none arrives within `seconds`.
    public func receive(within seconds: Double) -> String? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(seconds * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }
}
