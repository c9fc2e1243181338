import Glibc

/// Where the service manager listens for this process's notifications:
/// `$NOTIFY_SOCKET` as sd_notify(3) defines it — an absolute path to a Unix
/// datagram socket, or `@name` for a socket in the abstract namespace. Parsed
/// once, so a bad value is one warning at start, never a failure per send.
public enum NotifySocketAddress: Equatable, Sendable {
    case path(String)
    /// The name after the '@' (sent with a leading NUL, as the kernel wants).
    case abstract(String)

    /// Why a `$NOTIFY_SOCKET` value cannot be used; each says what to set instead.
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case empty
        case relative(String)
        case tooLong(String, bytes: Int)
        /// `vsock:CID:PORT` and anything else systemd may add later.
        case unsupported(String)

        public var description: String {
            switch self {
            case .empty:
                "NOTIFY_SOCKET is empty: unset it, or give an absolute socket path or @name"
            case .relative(let value):
                "NOTIFY_SOCKET=\(value) is a relative path: give an absolute socket path or @name"
            case .tooLong(let value, let bytes):
                "NOTIFY_SOCKET=\(value) is \(bytes) bytes, past the \(NotifySocketAddress.maximumBytes) a Unix socket address holds: use a shorter path"
            case .unsupported(let value):
                "NOTIFY_SOCKET=\(value) is not a Unix socket address this worker speaks to (an absolute path or @name)"
            }
        }
    }

    /// `sun_path` is 108 bytes: a path needs its NUL, an abstract name its leading NUL.
    static let maximumBytes = 107

    public init(parsing value: String) throws(Problem) {
        switch value.first {
        case nil: throw .empty
        case "/": self = .path(value)
        case "@":
            guard value.count > 1 else { throw .empty }
            self = .abstract(String(value.dropFirst()))
        default:
            // Anything with a scheme (systemd 254's vsock:) is a transport, not a path.
            throw value.contains(":") ? .unsupported(value) : .relative(value)
        }
        let bytes = value.utf8.count - (value.first == "@" ? 1 : 0)
        if bytes > Self.maximumBytes { throw .tooLong(value, bytes: bytes) }
    }

    /// The bytes of `sun_path` that name this address: a path and its NUL, or
    /// an abstract name after a NUL (whose length is exact: a trailing NUL
    /// would be part of the name).
    var socketPathBytes: [UInt8] {
        switch self {
        case .path(let path): Array(path.utf8) + [0]
        case .abstract(let name): [0] + Array(name.utf8)
        }
    }

    /// Calls `body` with this address as a `sockaddr_un` and its exact length.
    func withSocketAddress<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name = socketPathBytes
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: name.prefix(raw.count)) }
        // sun_path follows sun_family directly (struct sockaddr_un).
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}
