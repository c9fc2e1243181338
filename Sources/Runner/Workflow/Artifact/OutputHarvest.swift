import Foundation
import Sandbox

/// The files a task left under `/output` (docs/ARCHITECTURE.md §10), read
/// through the worker's descriptor of its tmpfs after the run: each regular
/// file becomes an artifact, stored by digest. Nothing the task made is
/// followed: a symlink (to `/etc/shadow`, to `../..`) is a name, not a file, and
/// is skipped like a FIFO or a socket; past `maxListed` files the rest are
/// counted, not listed (shallowest first), so 100,000 empty files cost the record one line.
struct OutputHarvest {
    var artifacts: [Artifact] = []
    /// Contents for the Git store: pushed with the result commit.
    var gitBlobs: [(hex: String, bytes: [UInt8])] = []
    /// Why files were not kept, and how many.
    var skipped: [String: Int] = [:]

    static let volumeName = "output"
    static let maxListed = 1_000
    /// One artifact at most this large goes to Git: a result's commit, then
    /// main's tree, stay small enough for every worker's fetch (DESIGN: over
    /// 1 MB never enters Git), and a grid's history does not carry outputs.
    static let gitMaxBytes: UInt64 = 512 * 1024
    /// And at most this much per task in Git.
    static let gitMaxTotal: UInt64 = 8 << 20

    /// `directoryStore`: the worker's `artifact_dir`, for what Git does not take.
    static func harvest(from root: Int32, limit: UInt64, directoryStore: String?) -> OutputHarvest {
        var harvest = OutputHarvest()
        let contents: CheckpointContents
        switch CheckpointContents.read(from: root, limit: limit) {
        case .success(let read): contents = read
        case .failure(let refusal):
            harvest.skipped["unreadable: \(refusal)"] = 1
            return harvest
        }
        if !contents.links.isEmpty { harvest.skipped["symlink"] = contents.links.count }
        harvest.skipped.merge(contents.skippedKinds) { $0 + $1 }
        // Shallow first, then by name: past `maxListed`, what a task put at the top of /output is what is kept.
        func depth(_ path: String) -> Int { path.utf8.reduce(0) { $0 + ($1 == 0x2F ? 1 : 0) } }
        let files = contents.files.sorted { (depth($0.path), $0.path) < (depth($1.path), $1.path) }
        if files.count > maxListed { harvest.skipped["past \(maxListed) files", default: 0] += files.count - maxListed }
        var inGit: UInt64 = 0
        var stored: Set<Digest> = []
        for file in files.prefix(maxListed) {
            let digest = Digest(of: file.bytes)
            let size = UInt64(file.bytes.count)
            var artifact = Artifact(path: file.path, size: size, digest: digest, mediaType: Artifact.mediaType(of: file.path),
                                    store: .none, location: "")
            if size <= gitMaxBytes, inGit + size <= gitMaxTotal {
                artifact.store = .git
                artifact.location = ArtifactLocation.onMain(digest)
                if stored.insert(digest).inserted {
                    harvest.gitBlobs.append((digest.hex, file.bytes))
                    inGit += size
                }
            } else if let directoryStore, let path = ArtifactLocation.writeToDirectory(directoryStore, digest: digest, bytes: file.bytes) {
                artifact.store = .directory
                artifact.location = path
            } else {
                harvest.skipped["larger than Git takes, no artifact_dir", default: 0] += 1
            }
            harvest.artifacts.append(artifact)
        }
        return harvest
    }
}

extension OutputHarvest {
    /// The whole of a stream the record cut (docs/ARCHITECTURE.md §10), kept like
    /// an /output file: in Git when small, else in the directory store, else
    /// listed as not kept (its digest still recorded). nil when nothing was cut.
    mutating func keep(_ stream: OutputSpool.Stream, of spool: OutputSpool, recorded: Int, directoryStore: String?) -> Artifact? {
        let size = spool.size(stream)
        guard size > recorded else { return nil }
        let name = stream == .stdout ? "stdout" : "stderr"
        var hasher = DigestHasher()
        if UInt64(size) <= Self.gitMaxBytes {
            var bytes: [UInt8] = []
            guard spool.read(stream, { bytes.append(contentsOf: $0) }) else { return nil }
            hasher.update(bytes)
            let digest = hasher.finalize()
            if !gitBlobs.contains(where: { $0.hex == digest.hex }) { gitBlobs.append((digest.hex, bytes)) }
            return Artifact(path: name, size: UInt64(size), digest: digest, mediaType: "text/plain", store: .git,
                            location: ArtifactLocation.onMain(digest))
        }
        if let directoryStore, let (digest, path) = ArtifactLocation.copyToDirectory(directoryStore, from: spool, stream) {
            return Artifact(path: name, size: UInt64(size), digest: digest, mediaType: "text/plain", store: .directory, location: path)
        }
        guard spool.read(stream, { hasher.update(Array($0)) }) else { return nil }
        return Artifact(path: name, size: UInt64(size), digest: hasher.finalize(), mediaType: "text/plain", store: .none, location: "")
    }
}

/// Where each store keeps an artifact, and how to read it back (verified).
enum ArtifactLocation {
    /// In a result commit's tree.
    static func inResult(_ digest: Digest) -> String { "artifacts/\(digest.hex)" }
    /// On main, once folded: content-addressed, shared by every task that made the same bytes.
    static func onMain(_ digest: Digest) -> String { "artifacts/sha256/\(digest.hex)" }

    /// A spooled stream into `<dir>/sha256/<hex>`, hashed as it is copied; nil when it cannot be.
    static func copyToDirectory(_ directory: String, from spool: OutputSpool, _ stream: OutputSpool.Stream) -> (Digest, String)? {
        let folder = directory + "/sha256"
        guard (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)) != nil else { return nil }
        let temporary = folder + "/.stream.\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        var hasher = DigestHasher()
        var ok = true
        let read = spool.read(stream) { chunk in
            hasher.update(Array(chunk))
            var offset = 0
            while ok, offset < chunk.count {
                let n = write(fd, chunk.baseAddress! + offset, chunk.count - offset)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { ok = false } else { offset += n }
            }
        }
        close(fd)
        let digest = hasher.finalize()
        let path = folder + "/" + digest.hex
        guard read, ok, rename(temporary, path) == 0 else { unlink(temporary); return nil }
        return (digest, path)
    }

    /// `<dir>/sha256/<hex>`, written whole (a temporary name, then rename); nil when it cannot be.
    static func writeToDirectory(_ directory: String, digest: Digest, bytes: [UInt8]) -> String? {
        let folder = directory + "/sha256"
        let path = folder + "/" + digest.hex
        if FileManager.default.fileExists(atPath: path) { return path }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let temporary = folder + "/.\(digest.hex).\(getpid())"
            try Data(bytes).write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else { unlink(temporary); return nil }
            return path
        } catch {
            return nil
        }
    }
}
