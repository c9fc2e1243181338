import Glibc

/// The binaries installed beside this executable (`dgrid`, `dgrid-grid`,
/// `dgrid-registry`): found through /proc/self/exe, so neither PATH nor a
/// symlinked argv[0] can substitute another. `dgrid` execs its siblings for
/// their verbs; the worker runs `dgrid-registry` as a helper for the registry
/// store (docs/ARCHITECTURE.md §1, §10).
public enum SiblingPath {
    public static let registryHelper = "dgrid-registry"

    /// `fileName` in the directory of this executable (just `fileName` when /proc is unreadable).
    public static func beside(_ fileName: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return fileName }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory + "/" + fileName
    }
}
