import Foundation
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// One tar entry as a hostile image author would write it. Python's tarfile
/// writes it, because it writes anything: PAX overrides, GNU long names,
/// devices, hardlinks anywhere, xattrs as SCHILY.xattr records.
struct TarEntry: Codable, Sendable {
    enum Kind: String, Codable, Sendable { case file, dir, symlink, hardlink, char, block, fifo }

    var name: String
    var kind: Kind = .file
    var data: String = ""
    /// Symlink or hardlink target.
    var link: String = ""
    var mode: Int = 0o644
    var uid: Int = 0
    var gid: Int = 0
    var mtime: Int = 1_700_000_000
    /// Extra PAX records (pax archives only): "path" overrides the name,
    /// "SCHILY.xattr.NAME" carries an xattr.
    var pax: [String: String] = [:]

    static func file(_ name: String, _ data: String = "", mode: Int = 0o644, uid: Int = 0, pax: [String: String] = [:]) -> TarEntry {
        TarEntry(name: name, data: data, mode: mode, uid: uid, pax: pax)
    }
    static func dir(_ name: String, mode: Int = 0o755) -> TarEntry { TarEntry(name: name, kind: .dir, mode: mode) }
    static func symlink(_ name: String, to target: String) -> TarEntry { TarEntry(name: name, kind: .symlink, link: target, mode: 0o777) }
    static func hardlink(_ name: String, to target: String) -> TarEntry { TarEntry(name: name, kind: .hardlink, link: target) }
}

/// Writes test layers: a tar (pax or GNU format), optionally compressed, and
/// its diff_id. Everything lands in `dir`.
enum LayerBuilder {
    enum Format: String, Sendable { case pax, gnu }
    enum Compression: String, Sendable { case none, gzip, zstd }

    struct Layer {
        let path: String
        let diffID: Digest
        let mediaType: String
    }

    static func build(_ entries: [TarEntry], in dir: String, name: String = "layer", format: Format = .pax,
                      compression: Compression = .gzip) throws -> Layer {
        let spec = dir + "/\(name).json", tar = dir + "/\(name).tar"
        try JSONEncoder().encode(entries).write(to: URL(fileURLWithPath: spec))
        try Shell.check(["python3", "-c", tarWriter, spec, tar, format.rawValue])
        let diffID = try Digest(parsing: "sha256:" + sha256(of: tar))
        switch compression {
        case .none:
            return Layer(path: tar, diffID: diffID, mediaType: "application/vnd.oci.image.layer.v1.tar")
        case .gzip:
            try Shell.check(["gzip", "-kf", tar])
            return Layer(path: tar + ".gz", diffID: diffID, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip")
        case .zstd:
            try Shell.check(["zstd", "-qf", tar, "-o", tar + ".zst"])
            return Layer(path: tar + ".zst", diffID: diffID, mediaType: "application/vnd.oci.image.layer.v1.tar+zstd")
        }
    }

    static func sha256(of path: String) throws -> String {
        let out = try Shell.run(["sha256sum", path]).stdout
        return String(out.prefix(64))
    }

    private static let tarWriter = #"""
import json, sys, tarfile, io
spec, out, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
         "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT if fmt == "pax" else tarfile.GNU_FORMAT) as tar:
    for e in json.load(open(spec)):
        info = tarfile.TarInfo(e["name"])
        info.type = kinds[e["kind"]]
        info.mode, info.uid, info.gid, info.mtime = e["mode"], e["uid"], e["gid"], e["mtime"]
        info.linkname = e["link"]
        if e["kind"] in ("char", "block"):
            info.devmajor, info.devminor = (1, 3) if e["kind"] == "char" else (8, 0)
        info.pax_headers = e["pax"]
        data = e["data"].encode()
        if e["kind"] == "file":
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        else:
            tar.addfile(info)
"""#
}
