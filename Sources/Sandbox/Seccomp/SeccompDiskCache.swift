import CSeccomp
import CShims
import Glibc
import SandboxSupport

/// Compiled BPF kept on disk, so a short-lived `dgrid sandbox run` does not pay
/// for parsing and compiling a profile on every start (~2-3 ms here; crun
/// caches compiled profiles by checksum the same way). The key is the sha256 of
/// everything the program depends on: the profile's bytes, strictness, the
/// libseccomp version, the native architecture and the kernel release. Only
/// warning-free compiles are stored, so a cache hit never hides a warning.
///
/// What comes back from disk goes into every sandbox, so it is authenticated
/// before use: a file is `HMAC-SHA256(secret, key ‖ program) ‖ program`, under
/// the state directory's `SeccompCacheSecret`, and must be a regular file of
/// this user, mode 0600, one link. Anything else is recompiled (and the good
/// program written back): a forged or damaged file costs a compile, never a
/// weaker filter.
struct SeccompDiskCache {
    let directory: String

    /// BPF_MAXINSNS: the kernel refuses longer programs, so a longer file is not ours.
    private static let maximumInstructions = 4096
    private static let instructionSize = MemoryLayout<sock_filter>.stride

    func filter(profileBytes: [UInt8], strict: Bool,
                compile: () throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]))
        throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) {
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directoryFD >= 0, let secret = SeccompCacheSecret.load(in: directoryFD) else {
            if directoryFD >= 0 { close(directoryFD) }
            return try compile()
        }
        defer { close(directoryFD) }
        let key = Self.key(profileBytes: profileBytes, strict: strict)
        let name = "\(key.hex).bpf"
        let label = Array(key.hex.utf8)
        if let cached = Self.read(name, in: directoryFD, label: label, secret: secret) { return (cached, []) }
        let compiled = try compile()
        if compiled.warnings.isEmpty { Self.write(compiled.filter, to: name, in: directoryFD, label: label, secret: secret) }
        return compiled
    }

    /// `architecture` is libseccomp's token for the architecture the program is
    /// compiled for: the native one (a state directory shared between an x86_64
    /// and an arm64 host must not hand one the other's program).
    static func key(profileBytes: [UInt8], strict: Bool,
                    architecture: UInt32 = seccomp_arch_native()) -> Digest {
        var hasher = DigestHasher()
        // The kernel release too: Docker-style `minKernel` rules compile differently per kernel.
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        hasher.update(Array(("dgrid-seccomp-bpf-v2\0libseccomp \(SeccompLibrary.version)\0"
            + "arch 0x\(String(architecture, radix: 16))\0kernel \(release)\0strict=\(strict)\0").utf8))
        hasher.update(profileBytes)
        return hasher.finalize()
    }

    /// The program in `name` when the file is ours as written and its MAC holds.
    private static func read(_ name: String, in directory: Int32, label: [UInt8],
                             secret: SeccompCacheSecret) -> SeccompFilter? {
        let macSize = SeccompCacheSecret.macByteCount
        let sizes = (macSize + instructionSize)...(macSize + maximumInstructions * instructionSize)
        guard case .contents(let bytes) = PrivateFile.read(name, in: directory, sizes: sizes) else { return nil }
        let program = Array(bytes[macSize...])
        guard program.count % instructionSize == 0,
              SeccompCacheSecret.equal(bytes[..<macSize], secret.mac(label, program)) else { return nil }
        var instructions = [sock_filter](repeating: sock_filter(), count: program.count / instructionSize)
        instructions.withUnsafeMutableBytes { destination in
            program.withUnsafeBytes { destination.copyMemory(from: $0) }
        }
        return SeccompFilter(instructions: instructions)
    }

    /// Temp file and rename: a reader sees the whole program or none. Best effort.
    private static func write(_ filter: SeccompFilter, to name: String, in directory: Int32,
                              label: [UInt8], secret: SeccompCacheSecret) {
        let program = filter.instructions.withUnsafeBytes { Array($0) }
        let temporary = "\(name).\(getpid()).tmp"
        unlinkat(directory, temporary, 0)  // a crashed process of the same pid may have left one
        guard PrivateFile.write(secret.mac(label, program) + program, to: temporary, in: directory) else { return }
        if renameat(directory, temporary, directory, name) != 0 { unlinkat(directory, temporary, 0) }
    }
}
