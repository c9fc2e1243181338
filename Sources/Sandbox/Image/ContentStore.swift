import Glibc
import SandboxSupport

/// The content-addressed blob store, `$DGRID_HOME/images/blobs/sha256/<hex>`
/// (docs/ARCHITECTURE.md §5). A blob is only ever written by `ingest`: streamed into a 0600
/// temporary file in the same directory (O_EXCL, flock'd while written), hashed
/// and counted on the way, and renamed to its digest only when digest and size
/// both match. A reader therefore never sees a partial or unverified blob.
///
/// Concurrency comes from the filesystem, not a lock in this process: two
/// writers of the same blob each write their own temporary file and the
/// renames replace identical content, which is atomic for readers. That holds
/// across dgrid processes too, which an actor or a mutex would not give. The
/// class keeps no mutable state, so it is `Sendable` as is.
public final class ContentStore: Sendable {
    /// `.../images/blobs/sha256`.
    public let directory: String
    /// `.../images/quarantine`, where `verify` moves corrupt blobs.
    public let quarantineDirectory: String

    /// What dgrid reads into memory as JSON (manifests, configs, indexes).
    public static let documentLimit = 4 << 20
    private static let tempPrefix = ".ingest-"
    private static let bufferSize = 1 << 20

    /// Opens (creating 0700 directories as needed) the store under `state`.
    public init(state: StateDirectory) throws(ImageError) {
        directory = try state.imageDirectory("images/blobs/sha256")
        quarantineDirectory = try state.imageDirectory("images/quarantine")
    }

    /// Where the blob lives (it may not exist).
    public func path(for digest: Digest) -> String {
        "\(directory)/\(digest.hex)"
    }

    public func has(_ digest: Digest) -> Bool {
        var info = stat()
        return lstat(path(for: digest), &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    /// The stored blob's size, or nil when it is not stored.
    public func size(of digest: Digest) -> Int64? {
        var info = stat()
        guard lstat(path(for: digest), &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    /// Streams `size` bytes from `source` into the store as `expected`. Reads at
    /// most `size + 1` bytes: one more than declared is refused (`.tooLong`),
    /// fewer is `.truncated`, other content `.digestMismatch`. On any error
    /// nothing is stored.
    public func ingest(from source: inout some ByteSource, expected: Digest, size: Int64) throws(ImageError) {
        let actual = try write(from: &source, size: size, naming: expected) { actual throws(ImageError) in
            guard actual == expected else { throw .digestMismatch(expected: expected, actual: actual) }
        }
        _ = actual
    }

    /// Streams exactly `size` bytes and stores them under whatever digest they
    /// have. For content named by position rather than digest (a `docker save`
    /// `layer.tar`); the caller must then check the digest against what
    /// references it (the config's diff_id).
    public func ingestComputingDigest(from source: inout some ByteSource, size: Int64) throws(ImageError) -> Digest {
        try write(from: &source, size: size, naming: nil) { _ throws(ImageError) in }
    }

    /// Stores bytes dgrid itself produced (a manifest synthesized for a
    /// `docker save` image) and returns their digest.
    public func ingest(bytes: [UInt8]) throws(ImageError) -> Digest {
        var source = MemorySource(bytes, description: "generated document")
        return try ingestComputingDigest(from: &source, size: Int64(bytes.count))
    }

    private func write(from source: inout some ByteSource, size: Int64, naming expected: Digest?,
                       check: (Digest) throws(ImageError) -> Void) throws(ImageError) -> Digest {
        guard size >= 0 else {
            throw .invalidDocument(what: "descriptor\(expected.map { " \($0)" } ?? "")", reason: "negative size \(size)")
        }
        let temp = "\(directory)/\(Self.tempPrefix)\(FileIO.uniqueSuffix())"
        let fd = FileIO.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .system(operation: "create", path: temp, errno: errno) }
        // Held until the rename: `gc` removes only temporaries nobody holds.
        _ = flock(fd, LOCK_EX | LOCK_NB)
        var renamed = false
        defer {
            close(fd)
            if !renamed { unlink(temp) }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var hasher = DigestHasher()
        var total: Int64 = 0
        while true {
            let want = Int(min(Int64(buffer.count), size + 1 - total))
            let n: Int
            do {
                n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
            } catch {
                if case .readFailed(nil, let from, let message) = error {
                    throw .readFailed(digest: expected, source: from, message: message)
                }
                throw error
            }
            if n == 0 { break }
            total += Int64(n)
            if total > size {
                throw .tooLong(digest: expected ?? hasher.finalize(), expectedSize: size)
            }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            hasher.update(chunk)
            let err = FileIO.writeAll(fd, chunk)
            guard err == 0 else { throw .system(operation: "write", path: temp, errno: err) }
        }
        let actual = hasher.finalize()
        if total < size {
            throw .truncated(digest: expected ?? actual, expectedSize: size, received: total)
        }
        try check(actual)
        guard fsync(fd) == 0 else { throw .system(operation: "fsync", path: temp, errno: errno) }
        // Replacing an existing copy is fine: it is the same content (or a
        // corrupt copy, which this verified one repairs).
        guard rename(temp, path(for: actual)) == 0 else {
            throw .system(operation: "rename to", path: path(for: actual), errno: errno)
        }
        renamed = true
        FileIO.syncDirectory(directory)
        return actual
    }

    /// A small JSON blob (manifest, config, index), rehashed on every read so a
    /// corrupted store is noticed before its content is trusted.
    public func read(_ digest: Digest, limit: Int = ContentStore.documentLimit, what: String = "blob") throws(ImageError) -> [UInt8] {
        let path = path(for: digest)
        let fd = FileIO.open(path, O_RDONLY | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { throw .blobMissing(digest) }
            throw .system(operation: "open", path: path, errno: errno)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system(operation: "stat", path: path, errno: errno) }
        guard info.st_size <= limit else {
            throw .blobTooLarge(digest: digest, what: what, size: Int64(info.st_size), limit: Int64(limit))
        }
        let bytes = try FileIO.readAll(fd, limit: limit, what: what, path: path)
        let actual = Digest(of: bytes)
        guard actual == digest else { throw .digestMismatch(expected: digest, actual: actual) }
        return bytes
    }

    /// Rehashes one stored blob, streaming. Returns the digest its content has.
    func rehash(name: String) throws(ImageError) -> Digest {
        let path = "\(directory)/\(name)"
        let fd = FileIO.open(path, O_RDONLY | O_NOFOLLOW)
        guard fd >= 0 else { throw .system(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var hasher = DigestHasher()
        while true {
            let n = FileIO.read(fd, into: buffer)
            if n < 0 { throw .system(operation: "read", path: path, errno: errno) }
            if n == 0 { return hasher.finalize() }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// Every entry name in the blob directory, temporaries excluded.
    func blobNames() throws(ImageError) -> [String] {
        guard let names = FileIO.list(directory) else { throw .system(operation: "list", path: directory, errno: errno) }
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Rehashes every blob; corrupt ones (and anything that is not a regular
    /// file named by its digest) are moved to `images/quarantine/` so nothing
    /// reads them again. `quarantining: false` only reports them (`dgrid
    /// doctor`, which changes nothing it finds).
    public func verifyAll(quarantining: Bool = true) throws(ImageError) -> VerifyReport {
        var report = VerifyReport()
        for name in try blobNames() {
            var info = stat()
            guard lstat("\(directory)/\(name)", &info) == 0 else { continue }  // removed meanwhile (gc)
            let problem: String?
            if info.st_mode & S_IFMT != S_IFREG {
                problem = "not a regular file"
            } else if let expected = try? Digest(parsing: "sha256:\(name)") {
                let actual: Digest
                do {
                    actual = try rehash(name: name)
                } catch {
                    if case .system(_, _, ENOENT) = error { continue }
                    throw error
                }
                problem = actual == expected ? nil : "content hashes to \(actual)"
                report.bytes += Int64(info.st_size)
            } else {
                problem = "name is not a sha256 digest"
            }
            report.checked += 1
            guard let problem else { continue }
            let moved = quarantining ? try quarantine(name: name) : nil
            report.corrupt.append(.init(name: name, problem: problem, quarantinedAt: moved))
        }
        return report
    }

    private func quarantine(name: String) throws(ImageError) -> String {
        var target = "\(quarantineDirectory)/\(name)"
        var attempt = 1
        while FileIO.exists(target) {
            attempt += 1
            target = "\(quarantineDirectory)/\(name).\(attempt)"
        }
        guard rename("\(directory)/\(name)", target) == 0 else {
            throw .system(operation: "move to quarantine", path: target, errno: errno)
        }
        return target
    }

    /// Removes a blob (gc). Missing is fine.
    func remove(_ digest: Digest) throws(ImageError) {
        guard unlink(path(for: digest)) == 0 || errno == ENOENT else {
            throw .system(operation: "remove", path: path(for: digest), errno: errno)
        }
    }

    /// Removes temporaries whose writer is gone (its flock is free): what a
    /// crash in the middle of an ingest left. Returns how many.
    func removeAbandonedTemporaries() -> Int {
        FileIO.removeAbandonedTemporaries(in: directory)
    }
}

/// What `verifyAll` found.
public struct VerifyReport: Sendable, Equatable {
    public struct Corrupt: Sendable, Equatable {
        /// The file name in the blob directory.
        public let name: String
        public let problem: String
        /// Where it was moved; nil when only reported.
        public let quarantinedAt: String?
    }

    public var checked = 0
    public var bytes: Int64 = 0
    public var corrupt: [Corrupt] = []
}
