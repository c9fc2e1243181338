import CArchive
import CShims
import Glibc
import SandboxSupport

/// What waits for the last entry: opaque marks and directory metadata.
extension LayerExtraction {
    /// Marks opaque directories, then applies directory metadata, deepest
    /// first (reverse key order puts children before parents).
    func finish() throws(EntryFailure) -> UnpackReport {
        for (key, shown) in opaqueDirectories.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let marker = key.isEmpty ? ".wh..wh..opq" : shown + "/.wh..wh..opq"
            do {
                try markOpaque(key: key)
            } catch {
                throw .at(entry: marker, error)
            }
            report.opaqueDirectories.append(shown)
        }
        if directoryFixups[[]] == nil { _ = fchmod(tree.root, 0o755) }
        for (key, meta) in directoryFixups.sorted(by: { $1.key.lexicographicallyPrecedes($0.key) }) {
            // A directory later replaced by a non-directory is skipped; the
            // replacement got its own metadata.
            guard let fd = try? openDirectory(key: key), fd >= 0 else { continue }
            defer { if fd != tree.root { close(fd) } }
            do {
                try meta.apply(to: fd, chown: chown)
            } catch {
                throw .at(entry: EntryPath(key: key).display(), error)
            }
        }
        return report
    }

    /// The directory `key` names, opened for fd-based calls; -1 if it is not a
    /// directory (or gone). The root is returned as `tree.root`.
    func openDirectory(key: [UInt8]) throws(EntryFailure) -> Int32 {
        let path = EntryPath(key: key)
        guard path.count > 0 else { return tree.root }
        let parent = try tree.parent(of: path, create: false)
        return path.withComponent(path.count - 1) { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
    }
}
