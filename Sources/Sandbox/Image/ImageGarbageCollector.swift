import SandboxSupport
/// What `gc` removed and kept.
public struct GCReport: Sendable, Equatable {
    public var removedBlobs: [Digest] = []
    public var removedBytes: Int64 = 0
    /// diff_ids (hex) of removed layer directories.
    public var removedLayers: [String] = []
    /// Unreferenced layers kept because a run holds them.
    public var layersInUse: [String] = []
    /// Temporaries of crashed ingests and gcs.
    public var removedTemporaries = 0
}

/// `dgrid image gc`: removes blobs and unpacked layers that no image
/// references. Roots are every name in the local index and every digest the
/// allowlist pins (a pinned image stays runnable even after its name was
/// re-imported to point elsewhere). A layer a run holds (`LayerStore`'s
/// in-use contract) is never removed. gc runs only while no import is in
/// flight (`images/gc.lock`), and removes nothing when a root cannot be read:
/// a corrupt manifest would otherwise make everything look unreferenced.
public struct ImageGarbageCollector: Sendable {
    public let store: ImageStore

    public init(store: ImageStore) {
        self.store = store
    }

    public func collect() throws(ImageError) -> GCReport {
        guard let lock = try FileLock.take(path: store.gcLockPath, mode: .exclusive, wait: false) else {
            throw .busy(what: "an import is running (\(store.gcLockPath) is held); run gc again when it has finished")
        }
        var roots = Set(try store.index.images().map(\.manifest.digest))
        roots.formUnion(try store.allowlist.entries().compactMap(\.digest))

        var blobs: Set<Digest> = []
        var diffIDs: Set<Digest> = []
        for root in roots.sorted() {
            try mark(root, blobs: &blobs, diffIDs: &diffIDs, depth: 0)
        }

        var report = GCReport()
        for name in try store.content.blobNames() {
            guard let digest = try? Digest(parsing: "sha256:\(name)"), !blobs.contains(digest) else { continue }
            let size = store.content.size(of: digest) ?? 0
            try store.content.remove(digest)
            report.removedBlobs.append(digest)
            report.removedBytes += size
        }
        report.removedTemporaries += store.content.removeAbandonedTemporaries()
        report.removedTemporaries += FileIO.removeAbandonedTemporaries(in: FileIO.parent(of: store.index.path))

        let referenced = Set(diffIDs.map(\.hex))
        for name in try store.layers.names() {
            if name.hasPrefix(".gc-") {
                // A gc that crashed mid-removal: already renamed away from any run.
                try store.layers.removeTemporary(name)
                report.removedTemporaries += 1
            } else if name.hasSuffix(".inuse") {
                let hex = String(name.dropLast(".inuse".count))
                if !referenced.contains(hex) { try store.layers.removeStaleLock(hex: hex) }
            } else if (try? Digest(parsing: "sha256:\(name)")) != nil, !referenced.contains(name) {
                switch try store.layers.remove(hex: name) {
                case .removed: report.removedLayers.append(name)
                case .inUse: report.layersInUse.append(name)
                }
            }
        }
        _ = consume lock
        return report
    }

    /// Marks a manifest (or index) and everything it references.
    private func mark(_ digest: Digest, blobs: inout Set<Digest>, diffIDs: inout Set<Digest>, depth: Int) throws(ImageError) {
        guard depth < 4, store.content.has(digest) else { return }
        blobs.insert(digest)
        let bytes: [UInt8]
        do {
            bytes = try store.content.read(digest, what: "manifest")
        } catch {
            throw .gcAborted(reason: "cannot read referenced manifest \(digest) (\(error)); run `dgrid image verify`")
        }
        switch try OCIDocument.parse(bytes, declaredMediaType: nil, what: "manifest \(digest)") {
        case .index(let index):
            for child in index.manifests {
                try mark(child.digest, blobs: &blobs, diffIDs: &diffIDs, depth: depth + 1)
            }
        case .manifest(let manifest):
            blobs.insert(manifest.config.digest)
            blobs.formUnion(manifest.layers.map(\.digest))
            // Already broken (verify quarantined its config): its layers cannot
            // be named, and a re-import unpacks them again.
            guard store.content.has(manifest.config.digest) else { return }
            let config: ImageConfig
            do {
                config = try store.loadConfig(manifest, manifestDigest: digest, platform: nil)
            } catch {
                throw .gcAborted(reason: "cannot read the config of \(digest) (\(error)); run `dgrid image verify`")
            }
            diffIDs.formUnion(config.diffIDs)
        }
    }
}
