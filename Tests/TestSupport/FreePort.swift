import Foundation

/// A TCP port nothing listens on now, from the kernel (bind to port 0 on
/// 127.0.0.1, read it back, close): tests start their servers there instead of
/// on fixed numbers that collide with other suites or other users of the host.
public enum FreePort {
    public static func loopback() throws -> Int {
        guard let port = loopbackPorts(1).first else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return port
    }

    /// `count` distinct free ports: every socket stays bound until all are
    /// picked, so the kernel cannot hand out the same port twice. Empty when
    /// the host has no loopback sockets (then every server start fails loudly).
    public static func loopbackPorts(_ count: Int) -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return ports }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                    bind(fd, generic, length) == 0 && getsockname(fd, generic, &length) == 0
                }
            }
            guard bound else { return ports }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}
