import Foundation
import Testing
import TestSupport

/// `sandbox run --image` where overlayfs is refused (docs/ARCHITECTURE.md §5): the run
/// falls back to a per-run copy of the merged layers, says so, and leaves
/// nothing behind. The refusals are real ones, not faked: an image too deep
/// for one page of mount options, and an image listing one layer twice
/// (overlayfs refuses the same lowerdir twice with ELOOP).
@Suite(.system, .serialized) struct OverlayFallbackCLITests {
    /// Builds an OCI layout with Python's tarfile. Shapes:
    /// - `deep`: 80 layers (past one page of lowerdir options with layer-store
    ///   paths; the child names each lower by descriptor, so 128 fit).
    ///   Later layers overwrite, white out, make a directory opaque, turn a
    ///   directory into a file and back, and put a directory where a lower
    ///   layer had a symlink to the host's /etc.
    /// - `repeat`: base, A, B, A again (same diff_id twice).
    /// - `two`: base and one small layer.
    static func layout(_ shape: String) throws -> String {
        let out = try tempDirectory("dgrid-cli-fallback-layout") + "/layout"
        let script = #"""
        import hashlib, io, json, os, platform, sys, tarfile
        out, shape = sys.argv[1], sys.argv[2]
        def entry(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, mtime=0):
            i = tarfile.TarInfo(name); i.type = kind; i.mode = mode; i.uid = uid; i.gid = gid; i.mtime = mtime
            return i
        def layer(items):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
                for it in items:
                    kind, name = it[0], it[1]
                    if kind == "dir":
                        t.addfile(entry(name, tarfile.DIRTYPE, it[2] if len(it) > 2 else 0o755))
                    elif kind == "file":
                        data = it[2].encode() if isinstance(it[2], str) else it[2]
                        e = entry(name, mode=it[3] if len(it) > 3 else 0o644,
                                  uid=it[4] if len(it) > 4 else 0, gid=it[5] if len(it) > 5 else 0,
                                  mtime=it[6] if len(it) > 6 else 0)
                        e.size = len(data); t.addfile(e, io.BytesIO(data))
                    elif kind == "link":
                        e = entry(name, tarfile.SYMTYPE, 0o777); e.linkname = it[2]; t.addfile(e)
            return buf.getvalue()
        base = [("dir", "bin"), ("file", "bin/busybox", open("/bin/busybox", "rb").read(), 0o755),
                ("link", "bin/sh", "busybox")] + [("dir", d) for d in ("dev", "proc", "sys", "etc")] + [("dir", "tmp", 0o1777)]
        layers = []
        if shape == "deep":
            layers.append(layer(base + [
                ("dir", "data"), ("file", "data/keep", "base keep\n"), ("file", "data/gone", "base gone\n"),
                ("file", "data/replaced", "base\n"), ("file", "data/revived", "first life\n"),
                ("file", "data/owned", "owned\n", 0o640, 123, 456, 1000000),
                ("dir", "opq"), ("file", "opq/old", "old\n"), ("dir", "opq/sub"), ("file", "opq/sub/deep", "deep\n"),
                ("dir", "dir2file"), ("file", "dir2file/inner", "inner\n"), ("file", "file2dir", "a file\n"),
                ("link", "hostlink", "/etc")]))
            for i in range(1, 79):
                items = [("dir", "stack"), ("file", "stack/f%03d" % i, "%d\n" % i), ("dir", "data"),
                         ("file", "data/counter", "%d\n" % i)]
                if i == 30: items += [("file", "data/.wh.gone", ""), ("file", "data/.wh.revived", ""),
                                      ("file", "stack/.wh.f010", "")]
                if i == 40: items += [("dir", "opq"), ("file", "opq/.wh..wh..opq", ""), ("file", "opq/new", "new\n")]
                if i == 50: items += [("file", "dir2file", "now a file\n"), ("dir", "file2dir"),
                                      ("file", "file2dir/inner", "now a dir\n")]
                if i == 60: items += [("file", "data/revived", "second life\n")]
                if i == 70: items += [("dir", "hostlink"), ("file", "hostlink/dgrid-fallback-escape", "x\n")]
                layers.append(layer(items))
            layers.append(layer([("dir", "data"), ("file", "data/replaced", "top\n"), ("dir", "data/empty", 0o700)]))
        elif shape == "repeat":
            a = layer([("file", "a", "from A\n")])
            layers = [layer(base), a, layer([("file", "a", "from B\n"), ("file", "b", "from B\n")]), a]
        else:
            layers = [layer(base), layer([("file", "a", "from A\n")])]
        blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs)
        def blob(data):
            h = hashlib.sha256(data).hexdigest()
            with open(os.path.join(blobs, h), "wb") as f: f.write(data)
            return "sha256:" + h, len(data)
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        descriptors = []
        for data in layers:
            d, n = blob(data)
            descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
        config = {"architecture": arch, "os": "linux", "config": {"Env": ["PATH=/bin"], "WorkingDir": "/"},
                  "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]}}
        cd, cn = blob(json.dumps(config).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                    "layers": descriptors}
        md, mn = blob(json.dumps(manifest).encode())
        index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": "test/" + shape + ":v1"}}]}
        with open(os.path.join(out, "index.json"), "w") as f: json.dump(index, f)
        with open(os.path.join(out, "oci-layout"), "w") as f: f.write('{"imageLayoutVersion":"1.0.0"}')
        """#
        let build = Process()
        build.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        build.arguments = ["-c", script, out, shape]
        try build.run()
        build.waitUntilExit()
        guard build.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        return out
    }

    private static func tempDirectory(_ prefix: String) throws -> String {
        try TempDir.make(prefix: prefix).path
    }

    /// A home with `shape` imported and allowed as test/<shape>:v1.
    private func home(with shape: String) throws -> ImageCLITests.Home {
        let home = try ImageCLITests.Home()
        let imported = try home.dgrid("image", "import", try Self.layout(shape))
        #expect(imported.status == 0, "import: \(imported.stderr)")
        let allow = try home.dgrid("image", "allow", "test/\(shape):v1", "--approved-by", "test")
        #expect(allow.status == 0, "allow: \(allow.stderr)")
        return home
    }

    /// What runs left in run/: nothing but the shared, empty anchor.
    private func runLeftovers(_ home: ImageCLITests.Home) -> [String] {
        let fm = FileManager.default
        let anchor = ((try? fm.contentsOfDirectory(atPath: home.path + "/run/anchor")) ?? []).map { "anchor/" + $0 }
        return ((try? fm.contentsOfDirectory(atPath: home.path + "/run")) ?? []).filter { $0 != "anchor" } + anchor
    }

    private static func mountTable() throws -> String {
        // Mount ids and the order are stable; only a mount left behind changes the text.
        try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
    }

    /// Prints the root's filesystem type as the sandbox sees it.
    private static let rootType = "awk '$5 == \"/\" { for (i = 7; $i != \"-\"; i++); print \"root:\" $(i+1) }' /proc/self/mountinfo"

    @Test func aDeepImageIsOneOverlayWithTheMergedViewExact() throws {
        let home = try home(with: "deep")
        let mounts = try Self.mountTable()
        let script = """
        \(Self.rootType)
        cat /data/keep /data/replaced /data/counter /data/revived /opq/new /dir2file /file2dir/inner
        echo data: $(ls -A /data); echo opq: $(ls -A /opq); echo stack: $(ls /stack | wc -l) $(ls /stack | head -3)
        stat -c '%a %u:%g %Y' /data/owned /data/empty /bin
        test -L /hostlink && echo hostlink is a symlink; ls /hostlink
        test -L /bin/sh && echo sh: $(readlink /bin/sh)
        touch /new 2>&1 | grep -c Read-only
        """
        let r = try home.dgrid("sandbox", "run", "--image", "test/deep:v1", "--", "sh", "-c", script)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == """
        root:overlay
        base keep
        top
        78
        second life
        new
        now a file
        now a dir
        data: counter empty keep owned replaced revived
        opq: new
        stack: 77 f001 f002 f003
        640 123:456 1000000
        700 0:0 0
        755 0:0 0
        dgrid-fallback-escape
        sh: busybox
        1

        """)
        #expect(r.stderr == "", "an image of the most layers dgrid imports is one overlay mount")
        #expect(!FileManager.default.fileExists(atPath: "/etc/dgrid-fallback-escape"), "the copy followed a layer's symlink")
        #expect(runLeftovers(home).isEmpty)
        #expect(try Self.mountTable() == mounts)

        // Writable: the task writes into its own upper; the shared layers do not change.
        let w = try home.dgrid("sandbox", "run", "--image", "test/deep:v1", "--writable-rootfs", "--user", "0:0",
                               "--json", "--", "sh", "-c", "echo changed > /data/keep && cat /data/keep && ln -s /etc /run-escape")
        #expect(w.status == 0, "\(w.stderr)")
        let record = try JSONSerialization.jsonObject(with: Data(w.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(record["stdout"] as? String == "changed\n")
        #expect(record["rootfs_note"] as? String == nil, "\(record)")
        #expect(runLeftovers(home).isEmpty)
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"), "cleanup followed the task's symlink")
        let again = try home.dgrid("sandbox", "run", "--image", "test/deep:v1", "--", "sh", "-c", "cat /data/keep")
        #expect(again.stdout == "base keep\n", "\(again.stderr)")
        #expect(try Self.mountTable() == mounts)
    }

    @Test func aLayerListedTwiceIsRefusedByTheKernelAndRunsFromACopy() throws {
        let home = try home(with: "repeat")
        let mounts = try Self.mountTable()
        let r = try home.dgrid("sandbox", "run", "--image", "test/repeat:v1", "--",
                               "sh", "-c", "\(Self.rootType); cat /a /b")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "root:ext4\nfrom A\nfrom B\n")
        #expect(r.stderr == "dgrid: overlay refused (Too many levels of symbolic links): ran from a copy of 4 layers\n")
        #expect(runLeftovers(home).isEmpty)
        #expect(try Self.mountTable() == mounts)

        // A task that fails still fails once, from the copy, with its own status.
        let failing = try home.dgrid("sandbox", "run", "--image", "test/repeat:v1", "--json", "--",
                                     "sh", "-c", "echo ran >&2; exit 7")
        #expect(failing.status == 7)
        let record = try JSONSerialization.jsonObject(with: Data(failing.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(record["stderr"] as? String == "ran\n")
        #expect(record["rootfs_note"] as? String == "overlay refused (Too many levels of symbolic links): ran from a copy of 4 layers")
    }

    @Test func aTwoLayerImageStillRunsOnOverlayWithoutANote() throws {
        let home = try home(with: "two")
        let r = try home.dgrid("sandbox", "run", "--image", "test/two:v1", "--json", "--",
                               "sh", "-c", "\(Self.rootType); cat /a")
        #expect(r.status == 0, "\(r.stderr)")
        let record = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(record["stdout"] as? String == "root:overlay\nfrom A\n")
        #expect(record.keys.contains("rootfs_note") && record["rootfs_note"] is NSNull, "\(record)")
        let plain = try home.dgrid("sandbox", "run", "--image", "test/two:v1", "--", "sh", "-c", "cat /a")
        #expect(plain.stdout == "from A\n")
        #expect(plain.stderr == "")
        #expect(runLeftovers(home).isEmpty)
    }
}
