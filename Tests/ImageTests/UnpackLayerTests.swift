import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// Well-formed layers unpack exactly: contents, types, modes, owners, times,
/// hardlinks, and OCI whiteouts in their overlayfs form.
@Suite(.system) struct UnpackLayerTests {
    static let mtime = 1_600_000_000

    static let normalLayer: [TarEntry] = [
        // Opaque marker before its directory's own entry: order must not matter.
        .file("./opaque/.wh..wh..opq"),
        TarEntry(name: "./", kind: .dir, mode: 0o755, mtime: mtime),
        TarEntry(name: "./bin/", kind: .dir, mode: 0o755, mtime: mtime),
        TarEntry(name: "./bin/tool", data: "#!/bin/sh\necho hi\n", mode: 0o750, uid: 1000, gid: 100, mtime: mtime),
        TarEntry(name: "./bin/alias", kind: .hardlink, link: "./bin/tool"),
        TarEntry(name: "./bin/sh", kind: .symlink, link: "/bin/busybox", mode: 0o777, mtime: mtime + 1),
        TarEntry(name: "./ro/", kind: .dir, mode: 0o500, uid: 7, mtime: mtime + 2),
        TarEntry(name: "./ro/child", data: "inside a 0500 directory", mode: 0o400, mtime: mtime),
        TarEntry(name: "./opaque/", kind: .dir, mode: 0o711, mtime: mtime),
        TarEntry(name: "./opaque/kept", data: "new", mtime: mtime),
        .file("./etc/.wh.passwd"),
        TarEntry(name: "./fifo", kind: .fifo, mode: 0o620, mtime: mtime),
        // A later entry replaces an earlier one at the same path.
        .file("./twice", "first"),
        TarEntry(name: "./twice", data: "second", mode: 0o600, mtime: mtime),
        .file("./utf8/ünïcödé", "names are bytes"),
        TarEntry(name: "./xattr", data: "x", pax: ["SCHILY.xattr.user.origin": "layer"]),
    ]

    @Test(arguments: [LayerBuilder.Compression.gzip, .zstd, .none])
    func normalLayerUnpacksExactly(compression: LayerBuilder.Compression) throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try LayerBuilder.build(Self.normalLayer, in: scratch.blobs, compression: compression)
        let report = try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType,
                                              expectedDiffID: layer.diffID, destination: scratch.destination)
        let root = scratch.destination

        #expect(report.diffID == layer.diffID)
        #expect(report.entries == Self.normalLayer.count)
        #expect(report.uncompressedBytes == UInt64(try FileManager.default.attributesOfItem(atPath: scratch.blobs + "/layer.tar")[.size] as? Int ?? -1))
        #expect(report.whiteouts == ["etc/passwd"])
        #expect(report.opaqueDirectories == ["opaque"])
        #expect(report.skippedDevices.isEmpty && report.droppedSetuid.isEmpty && report.skippedXattrs == 0)
        #expect(try scratch.leftovers() == [])

        let tool = try fileStatus(root + "/bin/tool")
        #expect(tool.st_mode == S_IFREG | 0o750 && tool.st_uid == 1000 && tool.st_gid == 100)
        #expect(tool.st_mtim.tv_sec == Self.mtime && tool.st_nlink == 2)
        #expect(try fileStatus(root + "/bin/alias").st_ino == tool.st_ino)
        #expect(try String(contentsOfFile: root + "/bin/alias", encoding: .utf8) == "#!/bin/sh\necho hi\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/bin/sh") == "/bin/busybox")
        #expect(try fileStatus(root + "/bin/sh").st_mtim.tv_sec == Self.mtime + 1)

        // Directory modes and times land after their children were written.
        let ro = try fileStatus(root + "/ro")
        #expect(ro.st_mode == S_IFDIR | 0o500 && ro.st_uid == 7 && ro.st_mtim.tv_sec == Self.mtime + 2)
        #expect(try String(contentsOfFile: root + "/ro/child", encoding: .utf8) == "inside a 0500 directory")
        #expect(try fileStatus(root).st_mode == S_IFDIR | 0o755)
        #expect(try fileStatus(root).st_mtim.tv_sec == Self.mtime)

        // Whiteout: a 0/0 character device; opaque: the overlay xattr, no marker files.
        let whiteout = try fileStatus(root + "/etc/passwd")
        #expect(whiteout.st_mode & S_IFMT == S_IFCHR && whiteout.st_rdev == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/etc") == ["passwd"])
        #expect(try xattrs(of: root + "/opaque") == ["trusted.overlay.opaque": "y", "user.overlay.opaque": "y"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/opaque") == ["kept"])
        #expect(try fileStatus(root + "/opaque").st_mode == S_IFDIR | 0o711)

        #expect(try fileStatus(root + "/fifo").st_mode == S_IFIFO | 0o620)
        #expect(try String(contentsOfFile: root + "/twice", encoding: .utf8) == "second")
        #expect(try fileStatus(root + "/twice").st_mode == S_IFREG | 0o600)
        #expect(try String(contentsOfFile: root + "/utf8/ünïcödé", encoding: .utf8) == "names are bytes")
        #expect(try xattrs(of: root + "/xattr") == ["user.origin": "layer"])
    }

    /// Tar semantics inside one layer: the later entry wins, whatever the
    /// types, and the earlier one is removed, never written through.
    @Test func laterEntriesReplaceEarlierOnesOfAnyType() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try LayerBuilder.build([
            .dir("d/", mode: 0o700), .file("d/x"), .file("d", "now a file"),
            .file("f"), .dir("f/"), .file("f/y", "y"),
            .symlink("s", to: "../decoy"), .dir("s/"), .file("s/canary", "inside"),
            .file(".wh..wh..opq"), .hardlink("h", to: "f/y"), .file("f/y", "new y"),
        ], in: scratch.blobs)
        let before = try scratch.snapshot()
        let report = try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType,
                                              expectedDiffID: layer.diffID, destination: scratch.destination)
        let root = scratch.destination
        #expect(try String(contentsOfFile: root + "/d", encoding: .utf8) == "now a file")
        #expect(try fileStatus(root + "/d").st_mode == S_IFREG | 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/f") == ["y"])
        #expect(try String(contentsOfFile: root + "/s/canary", encoding: .utf8) == "inside")
        // The hardlink keeps the old y; the new y is a new file.
        #expect(try String(contentsOfFile: root + "/h", encoding: .utf8) == "y")
        #expect(try String(contentsOfFile: root + "/f/y", encoding: .utf8) == "new y")
        // An opaque marker at the top marks the layer root itself.
        #expect(report.opaqueDirectories == ["."])
        #expect(try xattrs(of: root) == ["trusted.overlay.opaque": "y", "user.overlay.opaque": "y"])
        #expect(try scratch.snapshot() == before)
    }

    @Test func gnuFormatWithLongNamesUnpacks() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let long = String(repeating: "directory-name/", count: 20) + "file"
        let layer = try LayerBuilder.build([.file(long, "deep"), .symlink("link", to: String(repeating: "t", count: 300))],
                                           in: scratch.blobs, format: .gnu)
        _ = try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType, expectedDiffID: layer.diffID,
                                     destination: scratch.destination)
        #expect(try String(contentsOfFile: scratch.destination + "/" + long, encoding: .utf8) == "deep")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: scratch.destination + "/link").count == 300)
    }

    @Test func setuidBitsAndMoreXattrsWhenTheAdminAllowsThem() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try LayerBuilder.build([
            .file("su", "#!", mode: 0o4755, pax: ["SCHILY.xattr.user.a": "1", "SCHILY.xattr.system.x": "2",
                                                  "SCHILY.xattr.security.capability": "3"]),
        ], in: scratch.blobs)
        let options = UnpackOptions(allowSetuid: true, xattrAllowlist: ["user.*", "security."])
        let report = try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType, expectedDiffID: layer.diffID,
                                              destination: scratch.destination, options: options)
        #expect(try fileStatus(scratch.destination + "/su").st_mode == S_IFREG | 0o4755)
        #expect(report.droppedSetuid == [])
        // security.* stays refused even when allowlisted.
        #expect(try xattrs(of: scratch.destination + "/su") == ["user.a": "1"])
        #expect(report.skippedXattrs == 2)
    }

    @Test func diffIDMismatchIsRefusedAndLeavesNothing() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try LayerBuilder.build([.file("a", "x")], in: scratch.blobs)
        let wrong = Digest(of: Array("another layer".utf8))
        #expect(throws: UnpackError.diffIDMismatch(expected: wrong, actual: layer.diffID)) {
            try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType, expectedDiffID: wrong,
                                     destination: scratch.destination)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.destination))
        #expect(try scratch.leftovers() == [])
    }

    @Test func unknownMediaTypeIsRefusedByName() throws {
        #expect {
            try LayerUnpacker.unpack(blobPath: "/dev/null", mediaType: "application/vnd.oci.image.layer.v1.tar+lz4",
                                     expectedDiffID: LayerBuilder.placeholderDiffID, destination: "/nonexistent/x")
        } throws: { error in
            "\(error)".contains("'application/vnd.oci.image.layer.v1.tar+lz4'")
        }
        for known in ["application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                      "application/vnd.docker.image.rootfs.diff.tar.gzip",
                      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"] {
            #expect(throws: Never.self) { try LayerMediaType(parsing: known) }
        }
    }

    @Test func compressionMustMatchTheMediaType() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try LayerBuilder.build([.file("a", "x")], in: scratch.blobs, compression: .gzip)
        #expect(throws: UnpackError.compressionMismatch(layer: layer.diffID, mediaType: .tarZstd, found: "gzip")) {
            try LayerUnpacker.unpack(blobPath: layer.path, mediaType: "application/vnd.oci.image.layer.v1.tar+zstd",
                                     expectedDiffID: layer.diffID, destination: scratch.destination)
        }
        #expect(throws: UnpackError.compressionMismatch(layer: layer.diffID, mediaType: .tar, found: "gzip")) {
            try LayerUnpacker.unpack(blobPath: layer.path, mediaType: "application/vnd.oci.image.layer.v1.tar",
                                     expectedDiffID: layer.diffID, destination: scratch.destination)
        }
        #expect(try scratch.leftovers() == [])
    }

    @Test func truncatedOrCorruptStreamsAreRefused() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try LayerBuilder.build([.file("a", String(repeating: "x", count: 100_000)), .file("b", "y")],
                                           in: scratch.blobs, compression: .none)
        // A damaged header after a good entry: libarchive would skip ahead and
        // carry on; we refuse the layer.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: layer.path))
        let second = bytes.range(of: Data("b\0".utf8), in: 100_000..<bytes.count)?.lowerBound ?? 0
        bytes[second + 120] ^= 0xff
        let damaged = scratch.blobs + "/damaged.tar"
        try bytes.write(to: URL(fileURLWithPath: damaged))
        let damagedDiffID = Digest(of: bytes)
        #expect {
            try LayerUnpacker.unpack(blobPath: damaged, mediaType: layer.mediaType, expectedDiffID: damagedDiffID,
                                     destination: scratch.destination)
        } throws: { error in
            "\(error)".contains("unreadable tar stream")
        }
        // Cut in the middle of a file's data.
        let truncated = scratch.blobs + "/truncated.tar"
        try bytes.prefix(50_000).write(to: URL(fileURLWithPath: truncated))
        #expect {
            try LayerUnpacker.unpack(blobPath: truncated, mediaType: layer.mediaType, expectedDiffID: layer.diffID,
                                     destination: scratch.destination)
        } throws: { error in
            "\(error)".contains("entry 'a'") && "\(error)".contains("unreadable")
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.destination))
        #expect(try scratch.leftovers() == [])
    }

    @Test func existingDestinationIsReportedDistinctly() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try LayerBuilder.build([.file("a", "x")], in: scratch.blobs)
        try FileManager.default.createDirectory(atPath: scratch.destination, withIntermediateDirectories: false)
        #expect(throws: UnpackError.destinationExists(path: scratch.destination)) {
            try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType, expectedDiffID: layer.diffID,
                                     destination: scratch.destination)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.destination) == [])
    }

    @Test func compressionRatioLimitHolds() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try LayerBuilder.build([.file("zeros", String(repeating: "\u{0}", count: 4 << 20))], in: scratch.blobs)
        #expect {
            try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType, expectedDiffID: layer.diffID,
                                     destination: scratch.destination, limits: UnpackLimits(maxCompressionRatio: 100))
        } throws: { error in
            "\(error)".contains("exceeds 100× the blob")
        }
        #expect(try scratch.leftovers() == [])
    }
}

func fileStatus(_ path: String) throws -> stat {
    var info = Glibc.stat()
    guard lstat(path, &info) == 0 else { throw ShellError(description: "lstat \(path): errno \(errno)") }
    return info
}
