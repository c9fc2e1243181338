import CArchive
import CShims
import Glibc
import SandboxSupport

/// OCI whiteouts (image-spec layer.md) in the form overlayfs reads, since
/// every layer is its own directory and runs stack them as overlay lowers.
extension LayerExtraction {
    /// `.wh.NAME` becomes a 0/0 character device NAME (overlayfs's whiteout);
    /// `DIR/.wh..wh..opq` is remembered and marked by `markOpaque` at the end.
    func whiteout() throws(EntryFailure) {
        let parentCount = name.count - 1
        if name.lastComponentHasPrefix(".wh..wh..opq") && name.component(parentCount).count == 12 {
            // Made now so the path is checked now; marked after the last entry.
            _ = try tree.directory(name, components: parentCount, create: true)
            opaqueDirectories[name.key(components: parentCount)] = name.display(components: parentCount)
            return
        }
        // Other ".wh..wh." names are AUFS bookkeeping (.wh..wh.plnk), not whiteouts.
        if name.lastComponentHasPrefix(".wh..wh.") { return }
        let hidden = name.component(parentCount).dropFirst(4)
        let dot = UInt8(ascii: ".")
        if hidden.isEmpty || hidden.elementsEqual([dot]) || hidden.elementsEqual([dot, dot]) {
            throw .refused(.invalidWhiteout(name: UntrustedText.shown(bytes: hidden)))
        }
        let parent = try tree.parent(of: name, create: true)
        // overlayfs reads a 0/0 character device as "deleted below".
        let made = name.withComponent(parentCount) { mknodat(parent, $0 + 4, S_IFCHR, 0) }
        if made != 0 {
            // Something of this same layer already sits there, and a whiteout
            // only hides lower layers: the entry stays.
            guard errno == EEXIST else { throw .system(operation: "create overlay whiteout", errno: errno) }
            return
        }
        let prefix = parentCount > 0 ? name.display(components: parentCount) + "/" : ""
        report.whiteouts.append(prefix + UntrustedText.shown(bytes: hidden))
    }

    /// Sets `trusted.overlay.opaque=y` on the directory `key` names.
    func markOpaque(key: [UInt8]) throws(EntryFailure) {
        let fd = try openDirectory(key: key)
        guard fd >= 0 else { throw .refused(.opaqueNotDirectory) }
        defer { if fd != tree.root { close(fd) } }
        let value = [UInt8(ascii: "y")]
        // Sandboxes mount their overlay inside a user namespace ("userxattr"),
        // where overlayfs reads user.overlay.*; trusted.overlay.* too where
        // this process may write it, for an overlay mounted on the host.
        if dgrid_unpack_fsetxattr(fd, "user.overlay.opaque", value, 1) != 0 {
            throw .system(operation: "mark opaque (user.overlay.opaque)", errno: errno)
        }
        _ = dgrid_unpack_fsetxattr(fd, "trusted.overlay.opaque", value, 1)
    }
}
