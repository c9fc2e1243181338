import CSeccomp
import CShims
import Glibc
import SandboxSupport

/// Gets the BPF program out of a libseccomp context. libseccomp 2.5 can only
/// write it to a file descriptor (`seccomp_export_bpf_mem` arrived in 2.6), so it
/// goes through an anonymous memory file and is read back.
enum SeccompExport {
    /// BPF_MAXINSNS: the kernel rejects longer programs with EINVAL.
    static let maximumInstructions = 4096

    static func bpf(from context: scmp_filter_ctx) throws(SeccompError) -> SeccompFilter {
        let fd = try memoryFile()
        defer { close(fd) }
        let rc = seccomp_export_bpf(context, fd)
        guard rc == 0 else { throw .libseccomp(call: "seccomp_export_bpf", subject: "the compiled filter", errno: -rc) }
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw .export(step: "lseek", errno: errno) }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .export(step: "read", errno: code)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return try filter(fromBytes: bytes)
    }

    /// Native-endian `struct sock_filter` records, 8 bytes each.
    static func filter(fromBytes bytes: [UInt8]) throws(SeccompError) -> SeccompFilter {
        let size = MemoryLayout<sock_filter>.stride
        guard !bytes.isEmpty, bytes.count % size == 0 else {
            throw .export(step: "read (\(bytes.count) bytes is not a whole number of \(size)-byte instructions)", errno: EIO)
        }
        let count = bytes.count / size
        guard count <= maximumInstructions else {
            throw .filterTooLarge(instructions: count, limit: maximumInstructions)
        }
        var instructions = [sock_filter](repeating: sock_filter(), count: count)
        instructions.withUnsafeMutableBytes { destination in
            bytes.withUnsafeBytes { destination.copyMemory(from: $0) }
        }
        return SeccompFilter(instructions: instructions)
    }

    private static func memoryFile() throws(SeccompError) -> Int32 {
        let fd = dgrid_memfd("dgrid-seccomp-bpf")
        guard fd >= 0 else { throw .export(step: "memfd_create", errno: errno) }
        return fd
    }
}
