import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// The copy a run falls back to where overlay is refused must be exactly the
/// tree overlayfs shows for the same layers. The reference is the kernel's
/// own overlay of those layers, mounted in a private mount namespace
/// (`unshare -m`), so no rule is checked against a restatement of itself.
@Suite(.system, .serialized) struct LayerCopyTests {
    /// Three layers in overlayfs format (the unpacker's output): whiteouts as
    /// 0:0 character devices, an opaque directory by xattr, type changes in
    /// both directions, a symlink to the host's /etc that a later layer
    /// replaces with a directory, owners, modes, mtimes, xattrs, hard links
    /// and a name that is not UTF-8.
    private static let build = #"""
    import os, sys
    root = sys.argv[1]
    def d(p, mode=0o755):
        os.makedirs(p, exist_ok=True); os.chmod(p, mode)
    def f(p, data, mode=0o644, uid=0, gid=0, mtime=None):
        with open(p, "wb") as h: h.write(data if isinstance(data, bytes) else data.encode())
        os.chown(p, uid, gid); os.chmod(p, mode)
        if mtime is not None: os.utime(p, (mtime, mtime))
    def wh(p): os.mknod(p, 0o600 | 0o020000, os.makedev(0, 0))
    L1, L2, L3 = (os.path.join(root, n) for n in ("l1", "l2", "l3"))
    for l in (L1, L2, L3): d(l)
    d(L1 + "/data"); f(L1 + "/data/keep", "keep\n"); f(L1 + "/data/gone", "gone\n")
    f(L1 + "/data/owned", "owned\n", 0o4750, 123, 456, 1000000)
    os.setxattr(L1 + "/data/owned", "user.note", b"kept")
    d(L1 + "/opq"); f(L1 + "/opq/old", "old\n"); d(L1 + "/opq/sub"); f(L1 + "/opq/sub/x", "x\n")
    d(L1 + "/d2f"); f(L1 + "/d2f/in", "in\n"); f(L1 + "/f2d", "file\n")
    os.symlink("/etc", L1 + "/hostlink"); os.symlink("keep", L1 + "/data/rel")
    f(L1 + "/hard", "linked\n"); os.link(L1 + "/hard", L1 + "/hard2")
    f(L1.encode() + b"/name-\xff", "not utf-8\n")
    os.mkfifo(L1 + "/fifo", 0o600)
    d(L2 + "/data", 0o750); wh(L2 + "/data/gone"); f(L2 + "/data/new", "new\n")
    d(L2 + "/opq"); os.setxattr(L2 + "/opq", "trusted.overlay.opaque", b"y"); f(L2 + "/opq/fresh", "fresh\n")
    f(L2 + "/d2f", "now a file\n"); d(L2 + "/f2d"); f(L2 + "/f2d/in", "now a dir\n")
    d(L2 + "/hostlink"); f(L2 + "/hostlink/dgrid-layercopy-escape", "x\n")
    wh(L2 + "/hard2")
    d(L3 + "/data", 0o700); f(L3 + "/data/gone", "back\n"); wh(L3 + "/data/rel")
    os.utime(L3 + "/data", (2000000, 2000000))
    for l in (L1, L2, L3):
        os.utime(l, (0, 0))
    """#

    /// One line per path: type, mode, owner, mtime (not of symlinks, whose
    /// times overlayfs reports from the layer), size and content or target,
    /// xattrs other than trusted.overlay.*.
    private static let list = #"""
    import hashlib, os, stat, sys
    top = sys.argv[1].encode()
    out = []
    for dirpath, dirs, files in os.walk(top):
        for n in sorted(dirs + files):
            p = os.path.join(dirpath, n); st = os.lstat(p); rel = os.path.relpath(p, top)
            kind = stat.S_IFMT(st.st_mode)
            line = [repr(rel), oct(kind), oct(stat.S_IMODE(st.st_mode)), "%d:%d" % (st.st_uid, st.st_gid)]
            if stat.S_ISLNK(st.st_mode): line.append(repr(os.readlink(p)))
            else: line.append(str(int(st.st_mtime)))
            if stat.S_ISREG(st.st_mode): line.append(hashlib.sha256(open(p, "rb").read()).hexdigest()[:12])
            if not stat.S_ISLNK(st.st_mode):
                line.append(",".join(sorted(a + "=" + repr(os.getxattr(p, a)) for a in os.listxattr(p)
                                            if not a.startswith("trusted.overlay."))))
            out.append(" ".join(line))
    print("\n".join(out))
    """#

    @Test func theCopyIsExactlyWhatOverlayfsShows() throws {
        let root = try TempDir.make(prefix: "dgrid-layercopy").path
        try Shell.check(["python3", "-c", Self.build, root])
        let layers = ["l1", "l2", "l3"].map { root + "/" + $0 }
        let copy = root + "/copy"
        #expect(mkdir(copy, 0o700) == 0)
        try LayerCopy.merge(layers: layers, into: copy)
        #expect(!FileManager.default.fileExists(atPath: "/etc/dgrid-layercopy-escape"), "the copy followed a symlink")

        try FileManager.default.createDirectory(atPath: root + "/merged", withIntermediateDirectories: false)
        let overlay = try Shell.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                     "mount -t overlay overlay -o lowerdir=\(root)/l3:\(root)/l2:\(root)/l1 \(root)/merged && python3 -c \"$0\" \(root)/merged",
                                     Self.list])
        #expect(overlay.status == 0, "\(overlay.stderr)")
        let copied = try Shell.run(["python3", "-c", Self.list, copy])
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(copied.stdout == overlay.stdout)
        // Spot checks, so the comparison cannot pass on two empty listings.
        #expect(copied.stdout.contains("'data/owned' 0o100000 0o4750 123:456 1000000"), "\(copied.stdout)")
        #expect(copied.stdout.contains("user.note=b'kept'"))
        #expect(copied.stdout.contains("'hostlink/dgrid-layercopy-escape'"))
        #expect(copied.stdout.contains("'name-\\xff'"))
        #expect(!copied.stdout.contains("'data/rel'") && !copied.stdout.contains("'opq/old'") && !copied.stdout.contains("hard2"))

        // Copies, never links: a writable run must not reach the shared layers.
        var inLayer = stat(), inCopy = stat()
        #expect(lstat(root + "/l1/hard", &inLayer) == 0 && lstat(copy + "/hard", &inCopy) == 0)
        #expect(inLayer.st_ino != inCopy.st_ino && inCopy.st_nlink == 1)
    }

    @Test func aMissingLayerIsOneClearError() throws {
        let root = try TempDir.make(prefix: "dgrid-layercopy").path
        #expect(mkdir(root + "/copy", 0o700) == 0)
        #expect(throws: LayerCopyFailure(operation: "open layer", path: root + "/nope", errno: ENOENT)) {
            try LayerCopy.merge(layers: [root + "/nope"], into: root + "/copy")
        }
    }
}
