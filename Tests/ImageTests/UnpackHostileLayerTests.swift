import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// One hostile layer and what must come of it.
struct LayerAttack: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable {
        /// Refused: the error names `entry` ("$WORK" stands for the scratch
        /// directory; nil when no entry is to blame) and contains `reason`.
        case refused(entry: String?, reason: String)
        /// Unpacked, and `check` holds on the layer root and report.
        case unpacks(@Sendable (_ root: String, _ report: UnpackReport) throws -> Void)
    }

    let name: String
    var format: LayerBuilder.Format = .pax
    var limits = UnpackLimits()
    /// The entries, given the scratch directory (for absolute names).
    let entries: @Sendable (_ work: String) -> [TarEntry]
    /// Builds the blob itself instead (bombs too big for `entries`).
    var blob: (@Sendable (_ dir: String) throws -> LayerBuilder.Layer)?
    let outcome: Outcome

    var testDescription: String { name }

    init(_ name: String, format: LayerBuilder.Format = .pax, limits: UnpackLimits = UnpackLimits(),
         entries: @escaping @Sendable (String) -> [TarEntry] = { _ in [] },
         blob: (@Sendable (String) throws -> LayerBuilder.Layer)? = nil, _ outcome: Outcome) {
        self.name = name
        self.format = format
        self.limits = limits
        self.entries = entries
        self.blob = blob
        self.outcome = outcome
    }
}

/// docs/THREATS.md "Unpacking": nothing outside the target is created, changed or
/// linked, whatever the names, types and order; a bad entry refuses the whole
/// layer and leaves nothing behind. Every row also checks the decoy beside the
/// destination (inodes, modes, times, contents) and the absence of temp dirs.
@Suite(.system) struct UnpackHostileLayerTests {
    static let attacks: [LayerAttack] = [
        // Names
        LayerAttack("dotdot name", entries: { _ in [.file("../escape", "x")] },
                    .refused(entry: "../escape", reason: "path leaves the layer")),
        LayerAttack("slash dotdot name", entries: { _ in [.file("/../escape", "x")] },
                    .refused(entry: "/../escape", reason: "absolute name")),
        LayerAttack("dotdot inside a name", entries: { _ in [.dir("a/"), .file("a/../../escape", "x")] },
                    .refused(entry: "a/../../escape", reason: "path leaves the layer")),
        LayerAttack("pax path override", entries: { _ in [.file("innocent", "x", pax: ["path": "../decoy/canary"])] },
                    .refused(entry: "../decoy/canary", reason: "path leaves the layer")),
        LayerAttack("GNU long name with dotdot", format: .gnu,
                    entries: { _ in [.file(String(repeating: "long/", count: 30) + String(repeating: "../", count: 31) + "escape", "x")] },
                    .refused(entry: "long/long/", reason: "path leaves the layer")),
        LayerAttack("absolute name", entries: { _ in [.file("/etc/dgrid-unpack-escape", "x")] },
                    .refused(entry: "/etc/dgrid-unpack-escape", reason: "absolute name")),
        LayerAttack("absolute name into the decoy", entries: { work in [.file(work + "/base/decoy/canary", "pwned")] },
                    .refused(entry: "$WORK/base/decoy/canary", reason: "absolute name")),
        LayerAttack("empty name", entries: { _ in [.file("", "x")] },
                    .refused(entry: "", reason: "empty name")),
        // The root itself
        LayerAttack("symlink named dot", entries: { _ in [.symlink(".", to: "/")] },
                    .refused(entry: ".", reason: "a symlink cannot replace the layer root")),
        LayerAttack("file named dot-slash-dot", entries: { _ in [.file("./.", "x")] },
                    .refused(entry: "./.", reason: "a regular file cannot replace the layer root")),
        LayerAttack("hardlink to the root", entries: { _ in [.hardlink("h", to: "./")] },
                    .refused(entry: "h", reason: "hardlink target './': is the layer root")),
        // Symlink, then write through it
        LayerAttack("symlink to / then write", entries: { work in [.symlink("root", to: "/"), .file("root" + work + "/base/decoy/canary", "pwned")] },
                    .refused(entry: "root$WORK/base/decoy/canary", reason: "path crosses a symlink at 'root'")),
        LayerAttack("symlink to ../.. then write", entries: { work in
                        [.symlink("up", to: "../.."), .file("up/\(URL(fileURLWithPath: work).lastPathComponent)/base/decoy/canary", "pwned")] },
                    .refused(entry: nil, reason: "path crosses a symlink at 'up'")),
        LayerAttack("chain of two symlinks then write", entries: { _ in
                        [.symlink("a", to: "b"), .symlink("b", to: "../decoy"), .file("a/canary", "pwned")] },
                    .refused(entry: "a/canary", reason: "path crosses a symlink at 'a'")),
        LayerAttack("symlink replaces a directory, then write", entries: { _ in
                        [.dir("d/"), .file("d/x", "x"), .symlink("d", to: "../decoy"), .file("d/canary", "pwned")] },
                    .refused(entry: "d/canary", reason: "path crosses a symlink at 'd'")),
        LayerAttack("symlink then directory through it", entries: { _ in [.symlink("s", to: "../decoy"), .dir("s/new/")] },
                    .refused(entry: "s/new/", reason: "path crosses a symlink at 's'")),
        LayerAttack("deep symlink then write", entries: { _ in
                        [.dir("a/b/"), .symlink("a/b/c", to: "../../../decoy"), .file("a/b/c/sub/inner", "pwned")] },
                    .refused(entry: "a/b/c/sub/inner", reason: "path crosses a symlink at 'a/b/c'")),
        LayerAttack("file then write below it", entries: { _ in [.file("f", "x"), .file("f/g", "x")] },
                    .refused(entry: "f/g", reason: "path crosses a non-directory at 'f'")),
        // Hardlinks
        LayerAttack("hardlink out with dotdot", entries: { _ in [.hardlink("h", to: "../decoy/canary")] },
                    .refused(entry: "h", reason: "hardlink target '../decoy/canary': path leaves the layer")),
        LayerAttack("hardlink through a symlink", entries: { _ in [.symlink("s", to: "../decoy"), .hardlink("h", to: "s/canary")] },
                    .refused(entry: "h", reason: "hardlink target 's/canary': path crosses a symlink at 's'")),
        LayerAttack("hardlink to a sibling sharing the prefix", entries: { work in [.hardlink("h", to: work + "/base/rootfs-evil/x")] },
                    .refused(entry: "h", reason: "absolute name")),
        LayerAttack("hardlink to the prefix sibling with dotdot", entries: { _ in [.hardlink("h", to: "../rootfs-evil/x")] },
                    .refused(entry: "h", reason: "path leaves the layer")),
        LayerAttack("hardlink to a missing target", entries: { _ in [.hardlink("h", to: "nothing")] },
                    .refused(entry: "h", reason: "hardlink target 'nothing': does not exist earlier in this layer")),
        LayerAttack("pax linkpath override", entries: { _ in
                        [.file("f", "x"), TarEntry(name: "h", kind: .hardlink, link: "f", pax: ["linkpath": "../decoy/canary"])] },
                    .refused(entry: "h", reason: "hardlink target '../decoy/canary': path leaves the layer")),
        // chmod/chown/write through a symlink at the entry's own name: the
        // later entry replaces the symlink; the decoy keeps its mode.
        LayerAttack("chmod through a symlink", entries: { work in
                        [.symlink("f", to: work + "/base/decoy/canary"), .file("f", "mine", mode: 0o777, uid: 4242)] },
                    .unpacks { (root: String, _: UnpackReport) throws in
                        var info = stat()
                        #expect(lstat(root + "/f", &info) == 0)
                        #expect(info.st_mode & S_IFMT == S_IFREG)
                        #expect(info.st_mode & 0o7777 == 0o777)
                        #expect(info.st_uid == 4242)
                        #expect(try String(contentsOfFile: root + "/f", encoding: .utf8) == "mine")
                    }),
        LayerAttack("hardlink to a symlink links the symlink", entries: { _ in
                        [.symlink("s", to: "../decoy/canary"), .hardlink("h", to: "s"), .file("h", "replaced")] },
                    .unpacks { (root: String, _: UnpackReport) throws in
                        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/s") == "../decoy/canary")
                        #expect(try String(contentsOfFile: root + "/h", encoding: .utf8) == "replaced")
                    }),
        // Types and bits
        LayerAttack("device nodes", entries: { _ in
                        [.dir("dev/"), TarEntry(name: "dev/null", kind: .char), TarEntry(name: "dev/sda", kind: .block),
                         .hardlink("dev/null2", to: "dev/null")] },
                    .unpacks { (root: String, report: UnpackReport) throws in
                        #expect(report.skippedDevices == ["dev/null", "dev/sda", "dev/null2"])
                        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/dev") == [])
                    }),
        LayerAttack("setuid root file", entries: { _ in [.file("su", "#!", mode: 0o4755), .file("sg", "#!", mode: 0o2711)] },
                    .unpacks { (root: String, report: UnpackReport) throws in
                        var info = stat()
                        #expect(lstat(root + "/su", &info) == 0 && info.st_mode & 0o7777 == 0o755)
                        #expect(lstat(root + "/sg", &info) == 0 && info.st_mode & 0o7777 == 0o711)
                        #expect(report.droppedSetuid == ["su", "sg"])
                    }),
        LayerAttack("security.capability and trusted xattrs", entries: { _ in
                        [.file("ping", "x", mode: 0o755, pax: [
                            "SCHILY.xattr.security.capability": "\u{1}\u{0}\u{0}\u{2}\u{0}\u{20}\u{0}\u{0}",
                            "SCHILY.xattr.trusted.overlay.opaque": "y",
                            "SCHILY.xattr.user.note": "kept",
                        ])] },
                    .unpacks { (root: String, report: UnpackReport) throws in
                        #expect(report.skippedXattrs == 2)
                        #expect(try xattrs(of: root + "/ping") == ["user.note": "kept"])
                    }),
        // Sandboxes mount their overlay with "userxattr": a layer's own
        // user.overlay.* would forge opaque directories, redirects or metacopy.
        LayerAttack("forged user.overlay xattrs", entries: { _ in
                        [.file("ping", "x", mode: 0o755, pax: [
                            "SCHILY.xattr.user.overlay.opaque": "y",
                            "SCHILY.xattr.user.overlay.redirect": "/etc",
                            "SCHILY.xattr.user.overlay.metacopy": "",
                            "SCHILY.xattr.user.note": "kept",
                        ])] },
                    .unpacks { (root: String, report: UnpackReport) throws in
                        #expect(report.skippedXattrs == 3)
                        #expect(try xattrs(of: root + "/ping") == ["user.note": "kept"])
                    }),
        // Whiteouts
        LayerAttack("whiteout naming dotdot", entries: { _ in [.file(".wh..."), .file("x")] },
                    .refused(entry: ".wh...", reason: "whiteout names '..'")),
        LayerAttack("whiteout naming dot", entries: { _ in [.dir("a/"), .file("a/.wh..")] },
                    .refused(entry: "a/.wh..", reason: "whiteout names '.'")),
        LayerAttack("whiteout with an empty name", entries: { _ in [.file(".wh.")] },
                    .refused(entry: ".wh.", reason: "whiteout names ''")),
        LayerAttack("whiteout through a symlink", entries: { _ in [.symlink("s", to: "../decoy"), .file("s/.wh.planted")] },
                    .refused(entry: "s/.wh.planted", reason: "path crosses a symlink at 's'")),
        LayerAttack("opaque marker through a symlink", entries: { _ in [.symlink("s", to: "../decoy"), .file("s/.wh..wh..opq")] },
                    .refused(entry: "s/.wh..wh..opq", reason: "path crosses a symlink at 's'")),
        LayerAttack("opaque marker, then its directory replaced by a symlink", entries: { _ in
                        [.file("d/.wh..wh..opq"), .symlink("d", to: "../decoy")] },
                    .unpacks { (root: String, report: UnpackReport) throws in
                        // The later entry wins; the marker went with the directory.
                        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/d") == "../decoy")
                        #expect(report.opaqueDirectories == [])
                        #expect(try xattrs(of: root + "/../decoy") == [:])
                    }),
        // Bombs and limits
        // A header declaring 20 GiB is refused before its data is read...
        LayerAttack("20 GiB gzip bomb", limits: UnpackLimits(maxLayerBytes: 64 << 20),
                    blob: { dir in try LayerBuilder.bomb(bytes: 20 << 30, in: dir) },
                    .refused(entry: "zeros", reason: "more than 64m (maxLayerBytes")),
        // ...and what no header declares is counted as it streams.
        LayerAttack("20 GiB gzip bomb after the end marker", limits: UnpackLimits(maxLayerBytes: 64 << 20),
                    blob: { dir in try LayerBuilder.bomb(bytes: 20 << 30, insideFile: false, in: dir) },
                    .refused(entry: nil, reason: "uncompressed layer exceeds 64m (maxLayerBytes)")),
        LayerAttack("20 GiB zstd bomb after the end marker", limits: UnpackLimits(maxLayerBytes: 64 << 20),
                    blob: { dir in try LayerBuilder.bomb(bytes: 20 << 30, insideFile: false, compression: .zstd, in: dir) },
                    .refused(entry: nil, reason: "uncompressed layer exceeds 64m (maxLayerBytes)")),
        LayerAttack("a million empty entries", limits: UnpackLimits(maxEntries: 100_000),
                    blob: { dir in try LayerBuilder.manyEntries(1_000_000, in: dir) },
                    .refused(entry: nil, reason: "more than 100000 entries")),
        LayerAttack("deep nesting", entries: { _ in [.file(String(repeating: "d/", count: 300) + "f", "x")] },
                    .refused(entry: "d/d/d/", reason: "path deeper than 256 components")),
        LayerAttack("long symlink target", limits: UnpackLimits(maxSymlinkTargetBytes: 100),
                    entries: { _ in [.symlink("s", to: String(repeating: "x", count: 101))] },
                    .refused(entry: "s", reason: "symlink target longer than 100 bytes")),
        LayerAttack("long name", limits: UnpackLimits(maxPathBytes: 200),
                    entries: { _ in [.file(String(repeating: "n", count: 201))] },
                    .refused(entry: "nnnn", reason: "name longer than 200 bytes")),
        LayerAttack("sparse file claiming a terabyte", limits: UnpackLimits(maxLayerBytes: 64 << 20), entries: { _ in
                        // GNU sparse 1.0: a map block (one 1-byte extent at the end), then the data.
                        let map = "1\n1099511627775\n1\n"
                        return [.file("sparse", map + String(repeating: "\u{0}", count: 512 - map.utf8.count) + "x",
                                      pax: ["GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                            "GNU.sparse.name": "sparse", "GNU.sparse.realsize": "1099511627776"])] },
                    .refused(entry: "sparse", reason: "regular files add up to more than 64m")),
        LayerAttack("negative owner", entries: { _ in [.file("f", "x", uid: -1)] },
                    .refused(entry: "f", reason: "owner id -1 out of range")),
        LayerAttack("owner that chown reads as 'unchanged'", entries: { _ in [.file("f", "x", uid: 4_294_967_295)] },
                    .refused(entry: "f", reason: "owner id 4294967295 out of range")),
    ]

    @Test(arguments: attacks)
    func hostileLayer(_ attack: LayerAttack) throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try attack.blob?(scratch.blobs)
            ?? LayerBuilder.build(attack.entries(scratch.work), in: scratch.blobs, format: attack.format)
        let before = try scratch.snapshot()

        let result = Result { () throws(UnpackError) -> UnpackReport in
            try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType, expectedDiffID: layer.diffID,
                                     destination: scratch.destination, limits: attack.limits)
        }
        switch (attack.outcome, result) {
        case (.refused(let entry, let reason), .failure(let error)):
            let text = error.description
            if let entry {
                #expect(text.contains("entry '\(entry.replacingOccurrences(of: "$WORK", with: scratch.work))"), "\(text)")
            }
            #expect(text.contains(reason), "\(text)")
            #expect(!FileManager.default.fileExists(atPath: scratch.destination))
        case (.unpacks(let check), .success(let report)):
            try check(scratch.destination, report)
        case (_, .failure(let error)):
            Issue.record("expected \(attack.name) to unpack, got: \(error)")
        case (_, .success):
            Issue.record("expected \(attack.name) to be refused, but it unpacked")
        }
        #expect(try scratch.snapshot() == before, "something outside the layer changed")
        #expect(try scratch.leftovers() == [])
        #expect(!FileManager.default.fileExists(atPath: "/etc/dgrid-unpack-escape"))
    }
}

/// The xattrs of `path` (not following a symlink), read by Python's os module.
func xattrs(of path: String) throws -> [String: String] {
    let out = try Shell.run(["python3", "-c", """
        import os, sys, json
        p = sys.argv[1]
        print(json.dumps({n: os.getxattr(p, n, follow_symlinks=False).decode('latin-1') for n in os.listxattr(p, follow_symlinks=False)}))
        """, path]).stdout
    return try JSONDecoder().decode([String: String].self, from: Data(out.utf8))
}
