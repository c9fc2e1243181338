import CShims
import Glibc

/// Compiled BPF kept on disk, so a short-lived `dgrid sandbox run` does not pay
/// for parsing and compiling a profile on every start (~2-3 ms here; STYLE.md
/// practice 4: cache compiled profiles by checksum). The key is the sha256 of
/// everything the program depends on: the profile's bytes, strictness, the
/// libseccomp version, the architecture and the kernel release. Only warning-free compiles are
/// stored, so a cache hit never hides a warning.
struct SeccompDiskCache {
    let directory: String

    /// BPF_MAXINSNS: the kernel refuses longer programs, so a longer file is not ours.
    private static let maximumInstructions = 4096

    func filter(profileBytes: [UInt8], strict: Bool,
                compile: () throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]))
        throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) {
        let path = "\(directory)/\(Self.key(profileBytes: profileBytes, strict: strict).hex).bpf"
        if let cached = Self.read(path) { return (cached, []) }
        let compiled = try compile()
        if compiled.warnings.isEmpty { Self.write(compiled.filter, to: path) }
        return compiled
    }

    static func key(profileBytes: [UInt8], strict: Bool) -> Digest {
        var hasher = DigestHasher()
        // The kernel release too: Docker-style `minKernel` rules compile differently per kernel.
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        hasher.update(Array("dgrid-seccomp-bpf-v1\0libseccomp \(SeccompLibrary.version)\0x86_64\0kernel \(release)\0strict=\(strict)\0".utf8))
        hasher.update(profileBytes)
        return hasher.finalize()
    }

    private static func read(_ path: String) -> SeccompFilter? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let stride = MemoryLayout<sock_filter>.stride
        var instructions = [sock_filter](repeating: sock_filter(), count: maximumInstructions + 1)
        let n = instructions.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0, n % stride == 0, n / stride <= maximumInstructions else { return nil }
        instructions.removeSubrange((n / stride)...)
        return SeccompFilter(instructions: instructions)
    }

    /// Temp file and rename: a reader sees the whole program or none. Best effort.
    private static func write(_ filter: SeccompFilter, to path: String) {
        let temp = "\(path).\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let size = filter.instructions.count * MemoryLayout<sock_filter>.stride
        let written = filter.instructions.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written != size || rename(temp, path) != 0 { unlink(temp) }
    }
}
