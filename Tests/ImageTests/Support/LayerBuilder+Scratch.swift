import TestSupport
import Foundation

/// A scratch area for one unpack: `work/base/rootfs` is the destination
/// (absent until unpacked), `work/base/decoy` and `work/base/rootfs-evil` are
/// what an escape would hit, `work/blobs` holds the layer files.
struct UnpackScratch {
    let work: String
    var base: String { work + "/base" }
    var destination: String { base + "/rootfs" }
    var blobs: String { work + "/blobs" }

    init() throws {
        work = try TempDir.make(prefix: "dgrid-unpack").path
        let fm = FileManager.default
        for dir in [blobs, base + "/decoy/sub", base + "/rootfs-evil"] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        try "canary".write(toFile: base + "/decoy/canary", atomically: false, encoding: .utf8)
        try "inner".write(toFile: base + "/decoy/sub/inner", atomically: false, encoding: .utf8)
        try "evil".write(toFile: base + "/rootfs-evil/x", atomically: false, encoding: .utf8)
        try fm.createSymbolicLink(atPath: base + "/decoy/link", withDestinationPath: "canary")
    }

    /// Every path under `work` except the blobs and the unpacked layer, with
    /// inode, link count, type, mode, owner, size, mtime, xattrs and content (or link
    /// target), as Python's os module sees it without following symlinks.
    func snapshot() throws -> [String: String] {
        let out = try Shell.run(["python3", "-c", #"""
import json, os, sys
work, skip = sys.argv[1], set(sys.argv[2:])
result = {}
def walk(path, rel):
    if path in skip:
        return
    st = os.lstat(path)
    line = "ino=%d mode=%o uid=%d gid=%d size=%d" % (st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_size)
    # A hardlink from inside the layer shows in the target's link count
    # (a directory's count only tracks subdirectories, listed anyway).
    if not os.path.isdir(path) or os.path.islink(path):
        line += " nlink=%d" % st.st_nlink
    # The base directory's mtime moves with the temporary directory; every other must hold.
    if path != work + "/base":
        line += " mtime=%d" % st.st_mtime_ns
    line += " xattrs=%r" % sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in os.listxattr(path, follow_symlinks=False))
    if os.path.islink(path):
        line += " -> " + os.readlink(path)
    elif os.path.isfile(path):
        line += " " + open(path, "rb").read().decode("latin-1")
    elif os.path.isdir(path):
        for child in os.listdir(path):
            walk(path + "/" + child, rel + "/" + child)
    result[rel or "."] = line
walk(work, "")
print(json.dumps(result))
"""#, work, blobs, destination])
        guard out.status == 0 else { throw ShellError(description: "snapshot: \(out.stderr)") }
        return try JSONDecoder().decode([String: String].self, from: Data(out.stdout.utf8))
    }

    /// Temporary unpack directories left next to the destination.
    func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: base).filter { $0.hasPrefix(".rootfs.unpack-") }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: work)
    }
}
