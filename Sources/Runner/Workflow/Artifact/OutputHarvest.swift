import Foundation
import Sandbox

/// The files a task left under `/output` and the whole of the streams the
/// record cut (docs/ARCHITECTURE.md §10), read through the worker's
/// descriptors after the run: each becomes an artifact, stored by digest.
/// Nothing the task made is followed: a symlink (to `/etc/shadow`, to `../..`)
/// is a name, not a file, and is skipped like a FIFO or a socket; past
/// `maxListed` files the rest are counted, not listed (shallowest first), so
/// 100,000 empty files cost the record one line.
///
/// Two steps. `collect` lists everything and keeps what Git takes (small files,
/// read into memory: at most `gitMaxTotal`); `store` puts the rest in the
/// worker's other store, streamed from the tmpfs or the spool — never held in
/// memory whole — and fails only when the registry does not take it (a host
/// fault: the caller gives the task back).
struct OutputHarvest {
    var artifacts: [Artifact] = []
    var stdoutArtifact: Artifact?
    var stderrArtifact: Artifact?
    /// Contents for the Git store: pushed with the result commit.
    var gitBlobs: [(hex: String, bytes: [UInt8])] = []
    /// Why files were not kept, and how many.
    var skipped: [String: Int] = [:]
    /// What Git did not take, for `store`.
    private var pending: [Pending] = []

    private enum Slot: Equatable {
        case file(Int)
        case stream(OutputSpool.Stream)
    }

    private enum Source {
        /// A file under /output, by its path (opened again beneath the tmpfs's root, never through a link).
        case output(String)
        case spool(OutputSpool.Stream)
    }

    private struct Pending {
        let slot: Slot
        let source: Source
        let size: UInt64
    }

    static let volumeName = "output"
    static let maxListed = 1_000
    /// One artifact at most this large goes to Git: a result's commit, then
    /// main's tree, stay small enough for every worker's fetch (DESIGN: over
    /// 1 MB never enters Git), and a grid's history does not carry outputs.
    static let gitMaxBytes: UInt64 = 512 * 1024
    /// And at most this much per task in Git.
    static let gitMaxTotal: UInt64 = 8 << 20
    /// Until `store` has read an artifact, its digest is not known.
    private static let notYetHashed = Digest(of: [UInt8]())

    // MARK: - collect

    /// Lists /output (the tmpfs's root `root`, at most `limit` bytes) and keeps
    /// the small files in Git; the others wait for `store`.
    mutating func collect(from root: Int32, limit: UInt64) {
        let contents: CheckpointContents
        switch CheckpointContents.read(from: root, limit: limit, readingContents: false) {
        case .success(let read): contents = read
        case .failure(let refusal):
            skipped["unreadable: \(refusal)"] = 1
            return
        }
        if !contents.links.isEmpty { skipped["symlink"] = contents.links.count }
        skipped.merge(contents.skippedKinds) { $0 + $1 }
        // Shallow first, then by name: past `maxListed`, what a task put at the top of /output is what is kept.
        func depth(_ path: String) -> Int { path.utf8.reduce(0) { $0 + ($1 == 0x2F ? 1 : 0) } }
        let files = contents.listed.sorted { (depth($0.path), $0.path) < (depth($1.path), $1.path) }
        if files.count > Self.maxListed { skipped["past \(Self.maxListed) files", default: 0] += files.count - Self.maxListed }
        var inGit: UInt64 = 0
        var stored: Set<Digest> = []
        for file in files.prefix(Self.maxListed) {
            let mediaType = Artifact.mediaType(of: file.path)
            guard file.size <= Self.gitMaxBytes, inGit + file.size <= Self.gitMaxTotal else {
                pending.append(Pending(slot: .file(artifacts.count), source: .output(file.path), size: file.size))
                artifacts.append(Artifact(path: file.path, size: file.size, digest: Self.notYetHashed, mediaType: mediaType, store: .none, location: ""))
                continue
            }
            var bytes: [UInt8] = []
            guard Self.read(.output(file.path), size: file.size, root: root, spool: nil, { bytes.append(contentsOf: $0) }) else {
                skipped["unreadable", default: 0] += 1
                continue
            }
            let digest = Digest(of: bytes)
            artifacts.append(Artifact(path: file.path, size: file.size, digest: digest, mediaType: mediaType, store: .git,
                                      location: ArtifactLocation.onMain(digest)))
            if stored.insert(digest).inserted {
                gitBlobs.append((digest.hex, bytes))
                inGit += file.size
            }
        }
    }

    /// The whole of a stream the record cut (docs/ARCHITECTURE.md §10), kept
    /// like an /output file: in Git when small, else it waits for `store`.
    /// Nothing when the record holds it all.
    mutating func collect(_ stream: OutputSpool.Stream, of spool: OutputSpool, recorded: Int) {
        let size = UInt64(spool.size(stream))
        guard size > UInt64(recorded) else { return }
        let name = stream == .stdout ? "stdout" : "stderr"
        var artifact = Artifact(path: name, size: size, digest: Self.notYetHashed, mediaType: "text/plain", store: .none, location: "")
        if size <= Self.gitMaxBytes {
            var bytes: [UInt8] = []
            guard spool.read(stream, { bytes.append(contentsOf: $0) }) else { return }
            let digest = Digest(of: bytes)
            if !gitBlobs.contains(where: { $0.hex == digest.hex }) { gitBlobs.append((digest.hex, bytes)) }
            artifact.digest = digest
            artifact.store = .git
            artifact.location = ArtifactLocation.onMain(digest)
        } else {
            pending.append(Pending(slot: .stream(stream), source: .spool(stream), size: size))
        }
        if stream == .stdout { stdoutArtifact = artifact } else { stderrArtifact = artifact }
    }

    // MARK: - store

    /// Stores what Git did not take: all of it in the registry when the worker
    /// has `artifact_registry` (one OCI artifact for the task, pushed by the
    /// helper before the result is published), else each in `artifact_dir`,
    /// else only its digest is recorded (store `none`). The registry's failure
    /// is returned, and is the host's: nothing of it is recorded.
    mutating func store(in stores: ArtifactStores, taskID: String, root: Int32?, spool: OutputSpool?) -> RegistryHelper.Failure? {
        guard !pending.isEmpty else { return nil }
        if let registry = stores.registry {
            return push(to: registry, helper: stores.helper, taskID: taskID, root: root, spool: spool)
        }
        var unreadable: [Slot] = []
        for item in pending {
            var hasher = DigestHasher()
            if let directory = stores.directory,
               let (digest, path) = ArtifactLocation.copyToDirectory(directory, reading: { body in
                   Self.read(item.source, size: item.size, root: root, spool: spool, body)
               }) {
                update(item.slot) { $0.digest = digest; $0.store = .directory; $0.location = path }
            } else if Self.read(item.source, size: item.size, root: root, spool: spool, { hasher.update($0) }) {
                let digest = hasher.finalize()
                update(item.slot) { $0.digest = digest }
                if case .file = item.slot {
                    let why = stores.directory == nil ? "larger than Git takes, no artifact_dir or artifact_registry" : "not written to artifact_dir"
                    skipped[why, default: 0] += 1
                }
            } else {
                unreadable.append(item.slot)
            }
        }
        pending = []
        drop(unreadable)
        return nil
    }

    /// Every pending artifact in one push: /output's root and the spool's files passed as descriptors.
    private mutating func push(to registry: ArtifactRepository, helper: RegistryHelper, taskID: String, root: Int32?,
                               spool: OutputSpool?) -> RegistryHelper.Failure? {
        var passing: [Int32] = []
        func childFD(_ fd: Int32) -> Int32 {
            if let index = passing.firstIndex(of: fd) { return RegistryHelper.firstPassed + Int32(index) }
            passing.append(fd)
            return RegistryHelper.firstPassed + Int32(passing.count - 1)
        }
        var files: [ArtifactPushRequest.File] = []
        for item in pending {
            let artifact = self[item.slot]
            switch item.source {
            case .output(let path):
                guard let root else { return RegistryHelper.Failure(exit: .failed, message: "no /output descriptor for \(path)", local: true) }
                files.append(.init(title: path, mediaType: artifact.mediaType, fd: childFD(root), path: path, size: item.size))
            case .spool(let stream):
                guard let spool else { return RegistryHelper.Failure(exit: .failed, message: "no spool for \(stream)", local: true) }
                let title = stream == .stdout ? ArtifactFetch.stdoutFile : ArtifactFetch.stderrFile
                files.append(.init(title: title, mediaType: artifact.mediaType, fd: childFD(spool.descriptor(stream)), size: item.size))
            }
        }
        let request = ArtifactPushRequest(repository: registry.description, tagStem: taskID, files: files,
                                          annotations: [ArtifactPushRequest.taskAnnotation: taskID])
        let report: ArtifactPushReport
        switch helper.push(request, passing: passing) {
        case .failure(let failure): return failure
        case .success(let pushed): report = pushed
        }
        guard report.files.count == pending.count,
              zip(report.files, pending).allSatisfy({ $0.size == $1.size }) else {
            return RegistryHelper.Failure(exit: .failed, message: "the helper's report does not list the \(pending.count) files it was given", local: true)
        }
        for (file, item) in zip(report.files, pending) {
            update(item.slot) { $0.digest = file.digest; $0.store = .registry; $0.location = report.location }
        }
        pending = []
        return nil
    }

    private subscript(slot: Slot) -> Artifact {
        switch slot {
        case .file(let index): artifacts[index]
        case .stream(let stream): (stream == .stdout ? stdoutArtifact : stderrArtifact)!
        }
    }

    private mutating func update(_ slot: Slot, _ change: (inout Artifact) -> Void) {
        switch slot {
        case .file(let index): change(&artifacts[index])
        case .stream(.stdout): if var artifact = stdoutArtifact { change(&artifact); stdoutArtifact = artifact }
        case .stream(.stderr): if var artifact = stderrArtifact { change(&artifact); stderrArtifact = artifact }
        }
    }

    /// Artifacts that could not be read again (gone under a dead task? never): not listed, counted.
    private mutating func drop(_ slots: [Slot]) {
        guard !slots.isEmpty else { return }
        var files: Set<Int> = []
        for slot in slots {
            switch slot {
            case .file(let index): files.insert(index)
            case .stream(.stdout): stdoutArtifact = nil
            case .stream(.stderr): stderrArtifact = nil
            }
        }
        artifacts = artifacts.enumerated().filter { !files.contains($0.offset) }.map(\.element)
        if !files.isEmpty { skipped["unreadable", default: 0] += files.count }
    }

    // MARK: - reading

    /// The bytes of `source` (exactly `size` of them) to `body`, a chunk at a time; false when they cannot be had.
    private static func read(_ source: Source, size: UInt64, root: Int32?, spool: OutputSpool?,
                             _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        switch source {
        case .spool(let stream):
            guard let spool, UInt64(spool.size(stream)) == size else { return false }
            return spool.read(stream, body)
        case .output(let path):
            guard let root, let (parent, name) = RelativeFiles.parent(of: path, in: root, creating: false) else { return false }
            let fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            close(parent)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, UInt64(info.st_size) == size else { return false }
            return FileChunks.read(fd, size: size, body) == nil
        }
    }
}

/// The worker's stores for what Git does not take (docs/ARCHITECTURE.md §10):
/// the registry wins over the directory.
struct ArtifactStores {
    var directory: String?
    var registry: ArtifactRepository?
    var helper: RegistryHelper

    init(settings: GridSettings) {
        directory = settings.artifactDirectory
        registry = settings.artifactRegistry
        helper = RegistryHelper(settings: settings)
    }
}

/// Where each store keeps an artifact, and how to read it back (verified).
enum ArtifactLocation {
    /// In a result commit's tree.
    static func inResult(_ digest: Digest) -> String { "artifacts/\(digest.hex)" }
    /// On main, once folded: content-addressed, shared by every task that made the same bytes.
    static func onMain(_ digest: Digest) -> String { "artifacts/sha256/\(digest.hex)" }

    /// Bytes read by `reading` into `<dir>/sha256/<hex>`, hashed as they are
    /// copied (a temporary name, then rename); nil when they cannot be.
    static func copyToDirectory(_ directory: String, reading: ((UnsafeRawBufferPointer) -> Void) -> Bool) -> (Digest, String)? {
        let folder = directory + "/sha256"
        guard (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)) != nil else { return nil }
        let temporary = folder + "/.artifact.\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        var hasher = DigestHasher()
        var ok = true
        let read = reading { chunk in
            hasher.update(chunk)
            if ok, FileIO.writeAll(fd, chunk) != 0 { ok = false }
        }
        close(fd)
        let digest = hasher.finalize()
        let path = folder + "/" + digest.hex
        guard read, ok, rename(temporary, path) == 0 else { unlink(temporary); return nil }
        return (digest, path)
    }
}
