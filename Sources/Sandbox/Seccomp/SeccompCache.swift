#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import SandboxSupport

/// Compiled filters by profile contents, so each profile is compiled once per
/// worker process (docs/ARCHITECTURE.md §4). Keyed by the file's bytes themselves rather than
/// a digest of them: a profile is a few KiB, and equal keys then mean equal
/// profiles, with no collision to reason about. The process-wide `shared`
/// instance is the one piece of global state in this module.
final class SeccompCache: Sendable {
    static let shared = SeccompCache()

    typealias Compiled = (filter: SeccompFilter, warnings: [String])

    private struct Key: Hashable {
        var bytes: [UInt8]
        var strict: Bool
    }

    private let entries = Mutex<[Key: Compiled]>([:])

    var count: Int { entries.withLock { $0.count } }

    /// Two threads missing at once both compile and the second store wins; the
    /// results are identical, and not holding the lock while compiling keeps other
    /// profiles' lookups fast.
    func compiled(bytes: [UInt8], path: String?, strict: Bool) throws(SeccompError) -> Compiled {
        let key = Key(bytes: bytes, strict: strict)
        if let hit = entries.withLock({ $0[key] }) { return hit }
        let profile = try SeccompProfile.parse(Data(bytes), path: path)
        let result = try SeccompCompiler.compile(profile, strict: strict)
        entries.withLock { $0[key] = result }
        return result
    }
}
