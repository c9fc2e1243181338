import Foundation
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// Layers too big to write entry by entry: built from repeated gzip members
/// (gzip allows concatenation and libarchive reads it), so a 20 GiB stream is
/// a 20 MB file made in a second, never held in memory or written out whole.
extension LayerBuilder {
    /// `bytes` zeros, as the data of one file or after the tar's end marker
    /// (where a tar reader stops but the diff_id hash must keep reading). The
    /// diff_id is a placeholder: the size limit must stop the unpack first.
    static func bomb(bytes: UInt64, insideFile: Bool = true, compression: Compression = .gzip, in dir: String) throws -> Layer {
        let out = dir + "/bomb.tar." + (compression == .zstd ? "zst" : "gz")
        try Shell.check(["python3", "-c", #"""
import gzip, subprocess, sys, tarfile
out, total, inside, codec = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
def pack(data):
    if codec == "zstd":
        return subprocess.run(["zstd", "-q", "-19", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
    return gzip.compress(data, 9, mtime=0)
info = tarfile.TarInfo("zeros")
info.size = total if inside else 1
head = info.tobuf(tarfile.PAX_FORMAT) + (b"" if inside else b"x" + bytes(511 + 1024))
chunk = 64 << 20
zeros = pack(bytes(chunk))
with open(out, "wb") as f:
    f.write(pack(head))
    for _ in range(total // chunk):
        f.write(zeros)
    f.write(pack(bytes(total % chunk + (-total) % 512 + (1024 if inside else 0))))
"""#, out, String(bytes), insideFile ? "1" : "0", compression.rawValue])
        let type = compression == .zstd ? "application/vnd.oci.image.layer.v1.tar+zstd" : "application/vnd.oci.image.layer.v1.tar+gzip"
        return Layer(path: out, diffID: placeholderDiffID, mediaType: type)
    }

    /// `count` empty files (10,000 names, repeated).
    static func manyEntries(_ count: Int, in dir: String) throws -> Layer {
        let out = dir + "/many.tar.gz"
        try Shell.check(["python3", "-c", #"""
import gzip, sys, tarfile
out, count = sys.argv[1], int(sys.argv[2])
block = b"".join(tarfile.TarInfo("e%05d" % i).tobuf(tarfile.USTAR_FORMAT) for i in range(10000))
member = gzip.compress(block, 6, mtime=0)
with open(out, "wb") as f:
    for _ in range(count // 10000):
        f.write(member)
    f.write(gzip.compress(bytes(1024), mtime=0))
"""#, out, String(count)])
        return Layer(path: out, diffID: placeholderDiffID, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip")
    }

    static let placeholderDiffID = Digest(of: Array("not checked: a limit stops the unpack first".utf8))
}
