import CGit2
import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// libgit2 1.5 spins forever inflating a truncated loose object, and some
/// garbled ones corrupt its heap (seen here: "free(): invalid next size"), so
/// a damaged file would hang or kill the worker before any repair could run.
/// The ledger therefore checks loose objects itself — the zlib stream is
/// whole, the header is git's, the content hashes to the file's name — before
/// libgit2 reads them: every one when the mirror is opened or consolidated,
/// and each one the first time it is read. A damaged one makes the mirror
/// count as corrupt (rebuilt from the remote). Packs need no such check: the
/// indexer verified them when they arrived, and their trailers are compared
/// on a miss (`GitLedger+MirrorRepair.swift`).
enum LooseObjectCheck {
    /// Larger loose files are not checked (a ledger's objects are far smaller;
    /// reading one that large just to check it would be the bigger harm).
    static let maxCheckedBytes = 64 << 20

    /// Why the loose object at `path`, named `hex`, is damaged; nil when it is
    /// sound (or too large to check).
    static func problem(atPath path: String, hex: String) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { return errno == ENOENT ? nil : "cannot open it: \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return "not a regular file" }
        guard info.st_size <= maxCheckedBytes else { return nil }
        var compressed = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < compressed.count {
            let got = compressed.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + filled, $0.count - filled, off_t(filled)) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return "cannot read it" }
            filled += got
        }
        guard let inflated = inflateWhole(compressed) else { return "its zlib stream is cut short or damaged" }
        guard let nul = inflated.prefix(32).firstIndex(of: 0) else { return "no object header" }
        let header = String(decoding: inflated[..<nul], as: UTF8.self).split(separator: " ")
        guard header.count == 2, ["blob", "tree", "commit", "tag"].contains(header[0]),
              let size = Int(header[1]), size == inflated.count - nul - 1 else { return "its header is not git's" }
        let digest = SHA1.hash(inflated).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        guard digest == hex else { return "its content hashes to \(digest), not to its name" }
        return nil
    }

    /// The whole inflated stream; nil unless it ends properly with no bytes after it.
    private static func inflateWhole(_ compressed: [UInt8]) -> [UInt8]? {
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var input = compressed
        var status = Z_OK
        input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            // Z_OK: progress made, go on. A truncated stream ends in Z_BUF_ERROR
            // (no progress possible), a damaged one in Z_DATA_ERROR: never a loop.
            while status == Z_OK && output.count <= 4 * maxCheckedBytes {
                chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    output += out.prefix(out.count - Int(stream.avail_out))
                }
            }
        }
        guard status == Z_STREAM_END, stream.avail_in == 0 else { return nil }
        return output
    }
}

extension GitLedger {
    /// The loose file of `id` in the mirror, if there is one.
    func loosePath(_ id: GitOID) -> String {
        let hex = id.hex
        return mirrorPath + "/objects/" + hex.prefix(2) + "/" + hex.dropFirst(2)
    }

    /// Checks `id`'s loose file (if any) before libgit2 reads it; a damaged one
    /// throws an error `repairingMirror` treats as corruption. Lock held.
    func checkLoose(_ id: GitOID, operation: String) throws(LedgerError) {
        guard !verifiedLoose.contains(id) else { return }
        if let problem = LooseObjectCheck.problem(atPath: loosePath(id), hex: id.hex) {
            throw LedgerError(.mirror, operation: operation, remote: remoteForErrors,
                              message: "loose object \(id.hex) is damaged: \(problem)",
                              hint: "the mirror is rebuilt from the remote",
                              gitClass: Int32(GIT_ERROR_ODB.rawValue), gitCode: GIT_ERROR.rawValue)
        }
        if verifiedLoose.count > 200_000 { verifiedLoose.removeAll() }
        verifiedLoose.insert(id)
    }

    /// Every damaged loose object in the mirror: (path, why).
    /// `since`: only files modified at or after it (nil: every one).
    func damagedLooseObjects(modifiedSince since: Int? = nil) -> [(path: String, problem: String)] {
        looseObjectFiles().compactMap { path in
            if let since {
                var info = stat()
                if lstat(path, &info) == 0, info.st_mtim.tv_sec < since { return nil }
            }
            let parts = path.split(separator: "/").suffix(2)
            return LooseObjectCheck.problem(atPath: path, hex: parts.joined()).map { (path, $0) }
        }
    }
}

/// When this mirror's loose objects were last all found sound, so the next
/// open checks only what was written since (every process reads each loose
/// object whole otherwise: a worker's own commits pile up between two packs).
/// The marker holds the boot id: after a crash of the machine, files checked
/// before it may have lost unflushed bytes, and everything is checked again.
enum LooseScanMarker {
    static let fileName = "dgrid-loose-checked"
    /// Files written this close before the marker are checked again (clock granularity, a writer racing the scan).
    static let slackSeconds = 2

    /// The time from which files need checking; nil when all do.
    static func since(mirror: String) -> Int? {
        let path = mirror + "/" + fileName
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, let boot = bootID(),
              let recorded = try? String(contentsOfFile: path, encoding: .utf8), recorded == boot else { return nil }
        return info.st_mtim.tv_sec - slackSeconds
    }

    /// Records that every loose object was sound as of now (best effort).
    static func record(mirror: String, startedAt: Int) {
        guard let boot = bootID() else { return }
        let path = mirror + "/" + fileName
        let temporary = path + ".\(getpid())"
        guard (try? boot.write(toFile: temporary, atomically: false, encoding: .utf8)) != nil else { return }
        // The marker's time is when the scan began: what was written during it is checked next time.
        var times = [timespec(tv_sec: startedAt, tv_nsec: 0), timespec(tv_sec: startedAt, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, temporary, &times, 0)
        if rename(temporary, path) != 0 { unlink(temporary) }
    }

    private static func bootID() -> String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
