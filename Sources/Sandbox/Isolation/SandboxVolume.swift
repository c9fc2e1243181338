import CShims
import Glibc
import SandboxSupport

/// A directory mounted at `/<name>` in the sandbox (docs/ARCHITECTURE.md §10):
/// the read-only `/inputs` a dependent task reads its dependencies' results
/// from, and the writable, size-capped `/output` and `/checkpoint`.
public struct SandboxVolume: Sendable {
    public enum Source: Sendable {
        /// A host directory, read-only inside: files must be readable by others
        /// (the sandbox's ids are not the worker's).
        case readOnly(path: String)
        /// A detached tmpfs the caller keeps reading and writing (`ScratchVolume`),
        /// read-only or writable inside.
        case scratch(ScratchVolume, readOnly: Bool)
    }

    /// One path component: the sandbox sees `/<name>`.
    public let name: String
    public let source: Source

    public init(name: String, source: Source) {
        self.name = name
        self.source = source
    }

    /// Names the sandbox's own mounts take, or that the run needs.
    static let reserved: Set<String> = ["proc", "dev", "tmp", "sys", "etc", "bin", "usr", "lib", "sbin", "root"]

    /// Why `volumes` cannot go into one sandbox; nil when they can.
    static func problem(_ volumes: [SandboxVolume]) -> String? {
        if volumes.count > Int(DGRID_MAX_VOLUMES) { return "\(volumes.count) volumes, at most \(DGRID_MAX_VOLUMES)" }
        var seen: Set<String> = []
        for volume in volumes {
            let name = volume.name
            guard (1...32).contains(name.utf8.count),
                  name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f || $0 == 0x2d }) else {
                return "volume name \(UntrustedText.quoted(name)) is not one lowercase path component"
            }
            guard !reserved.contains(name) else { return "volume name \(name) would hide the sandbox's own /\(name)" }
            guard seen.insert(name).inserted else { return "volume /\(name) is given twice" }
        }
        return nil
    }
}

/// A size-capped tmpfs that only this process and the sandboxes it is given to
/// can reach (docs/ARCHITECTURE.md §10): made detached (fsopen/fsmount) and never
/// attached anywhere on the host, so it needs no path, no cleanup, and leaves
/// no mount behind when the worker is killed — it goes with the last
/// descriptor. Its root belongs to the task's user (uid and gid as the task
/// sees them: the sandbox's view is idmapped, on-disk id N is N inside), so
/// the task writes there and the worker, root, reads and restores through
/// `descriptor` while the sandbox runs and after it ends. Needs root.
public final class ScratchVolume: @unchecked Sendable {
    /// The worker's own view: a directory descriptor for openat and friends.
    public let descriptor: Int32
    public let capacity: ByteCount

    public init(capacity: ByteCount, owner: UserID) throws(SandboxError) {
        let fd = dgrid_scratch_create("\(capacity.bytes)", owner.uid, owner.gid)
        guard fd >= 0 else {
            throw .volume("a scratch tmpfs of \(capacity) for the task: \(errnoText(-fd))"
                          + (-fd == EPERM ? " (only a root worker can give tasks /output and /checkpoint)" : ""))
        }
        descriptor = fd
        self.capacity = capacity
    }

    deinit { close(descriptor) }
}
