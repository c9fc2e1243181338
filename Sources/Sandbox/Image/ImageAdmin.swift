import SandboxSupport
/// The admin verbs behind `dgrid image allow | revoke | list | inspect`, so
/// the CLI only parses and prints.
public struct ImageAdmin: Sendable {
    public let store: ImageStore

    public init(store: ImageStore) {
        self.store = store
    }

    // MARK: allow

    public struct AllowResult: Sendable {
        public let entry: AllowlistEntry
        /// The entry this one replaced, if the name was allowlisted before.
        public let previous: AllowlistEntry?

        package init(entry: AllowlistEntry, previous: AllowlistEntry?) {
            self.entry = entry
            self.previous = previous
        }
    }

    /// Pins `reference` (`NAME[:TAG]` resolved through the local index, or
    /// `NAME[:TAG]@DIGEST` for a manifest already in the store) on the
    /// allowlist. Refuses an image that could not run: layers not unpacked,
    /// or a config a run would refuse (a user name, WorkingDir under /proc…).
    /// With `scanCommand`, runs the scanner first and records what it said.
    public func allow(_ reference: String, approvedBy: String?, note: String?, scanCommand: String?) throws(ImageError) -> AllowResult {
        if reference.hasPrefix("sha256:") {
            throw .invalidReference(text: reference, reason: "allow needs a name: dgrid image allow NAME[:TAG][@DIGEST]")
        }
        let parsed = try ImageReference(parsing: reference)
        let digest: Digest
        if let pinned = parsed.digest {
            guard store.content.has(pinned) else { throw .notInStore(reference: reference, digest: pinned) }
            digest = pinned
        } else {
            // A registry lookup comes with `pull`; this slice resolves locally.
            guard let local = try store.index.image(named: parsed.name) else { throw .unknownImage(parsed.name) }
            digest = local.manifest.digest
        }
        let image = try store.loadImage(manifest: digest)
        for diffID in image.config.diffIDs where !store.layers.isUnpacked(diffID) {
            throw .layerNotUnpacked(diffID: diffID, path: store.layers.path(for: diffID))
        }
        _ = try ImageRunConfig(validating: image.config, image: digest)

        var scan: ScanSummary?
        if let scanCommand {
            scan = try ImageScanner(store: store).scan(image: image, name: parsed.name, command: scanCommand)
        }
        let previous = try store.allowlist.entry(named: parsed.name)
        let same = previous?.digest == digest
        let now = Timestamp.now()
        let entry = AllowlistEntry(
            name: parsed.name, digest: digest,
            addedAt: same ? (previous?.addedAt ?? now) : now,
            approvedBy: approvedBy ?? (same ? previous?.approvedBy : nil),
            note: note ?? (same ? previous?.note : nil),
            lastScanned: scan != nil ? now : (same ? previous?.lastScanned : nil),
            vulnerabilities: scan ?? (same ? previous?.vulnerabilities : nil))
        let replaced = try store.allowlist.put(entry)
        return AllowResult(entry: entry, previous: replaced)
    }

    // MARK: revoke

    /// Removes `reference` from the allowlist: a name (`NAME[:TAG]`), or a
    /// digest (every entry pinning it). Returns what was removed; refuses
    /// when nothing matched.
    public func revoke(_ reference: String) throws(ImageError) -> [AllowlistEntry] {
        let removed: [AllowlistEntry]
        if reference.hasPrefix("sha256:") {
            let digest = try Digest.parsingReference(reference)
            removed = try store.allowlist.remove(name: nil, digest: digest)
        } else {
            removed = try store.allowlist.remove(name: try ImageReference(parsing: reference).name, digest: nil)
        }
        guard !removed.isEmpty else {
            throw .invalidReference(text: reference, reason: "not on the allowlist; `dgrid image list` shows what is")
        }
        return removed
    }

    // MARK: list

    /// One row of `dgrid image list`: an allowlist entry, or a local image no
    /// entry names.
    public struct Listing: Sendable, Equatable {
        public let name: String
        /// The pinned digest for allowlisted names; the local one otherwise.
        public let digest: Digest?
        public let allowlisted: Bool
        /// Whether the manifest is in the content store.
        public let stored: Bool
        /// What the local index maps the name to, when that differs from `digest`.
        public let localDigest: Digest?
        public let entry: AllowlistEntry?
    }

    public func list() throws(ImageError) -> [Listing] {
        let local = try store.index.images()
        let entries = try store.allowlist.entries()
        var rows: [Listing] = []
        for entry in entries.sorted(by: { $0.name < $1.name }) {
            let localDigest = local.first { $0.name == entry.name }?.manifest.digest
            rows.append(Listing(name: entry.name, digest: entry.digest, allowlisted: true,
                                stored: entry.digest.map(store.content.has) ?? false,
                                localDigest: localDigest == entry.digest ? nil : localDigest, entry: entry))
        }
        for image in local where !entries.contains(where: { $0.name == image.name }) {
            rows.append(Listing(name: image.name, digest: image.manifest.digest, allowlisted: false,
                                stored: store.content.has(image.manifest.digest), localDigest: nil, entry: nil))
        }
        return rows
    }

    // MARK: inspect

    public struct Inspection: Sendable {
        public struct Layer: Sendable {
            public let blob: Descriptor
            public let diffID: Digest
            public let unpacked: Bool
            public let path: String
        }

        public let names: [String]
        public let manifest: Descriptor
        public let configDigest: Digest
        public let platform: String?
        public let layers: [Layer]
        public let config: ImageConfig
        /// Why a run would refuse this config, if it would.
        public let configProblem: String?
        public let allowlistEntries: [AllowlistEntry]
    }

    /// Everything dgrid knows about a local image, by name or manifest digest.
    public func inspect(_ reference: String) throws(ImageError) -> Inspection {
        let digest: Digest
        var mediaType: String?
        if reference.hasPrefix("sha256:") {
            digest = try Digest.parsingReference(reference)
        } else {
            let parsed = try ImageReference(parsing: reference)
            if let pinned = parsed.digest {
                digest = pinned
            } else if let local = try store.index.image(named: parsed.name) {
                digest = local.manifest.digest
                mediaType = local.manifest.mediaType
            } else if let pinned = try store.allowlist.entry(named: parsed.name)?.digest {
                digest = pinned
            } else {
                throw .unknownImage(parsed.name)
            }
        }
        guard store.content.has(digest) else { throw .blobMissing(digest) }
        let image = try store.loadImage(manifest: digest, mediaType: mediaType, platform: nil)
        var problem: String?
        do {
            _ = try ImageRunConfig(validating: image.config, image: digest)
        } catch {
            problem = error.description
        }
        let layers = image.layers.map { layer in
            Inspection.Layer(blob: layer.blob, diffID: layer.diffID, unpacked: store.layers.isUnpacked(layer.diffID),
                             path: store.layers.path(for: layer.diffID))
        }
        let platform = image.config.os.flatMap { os in
            image.config.architecture.map { Platform(architecture: $0, os: os, variant: image.config.variant).description }
        }
        return Inspection(
            names: try store.index.images(with: digest).map(\.name),
            manifest: Descriptor(mediaType: image.manifest.mediaType, digest: digest, size: image.manifestSize),
            configDigest: image.configDigest, platform: platform, layers: layers, config: image.config,
            configProblem: problem, allowlistEntries: try store.allowlist.entries().filter { $0.digest == digest })
    }
}
