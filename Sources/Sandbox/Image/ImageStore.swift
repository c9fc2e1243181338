import SandboxSupport
/// Everything under `$DGRID_HOME` that holds images (docs/ARCHITECTURE.md §5):
///
/// ```
/// images/blobs/sha256/<hex>   ContentStore
/// images/index.json           LocalImageIndex (names → manifest digests)
/// images/allowlist.json       Allowlist
/// images/quarantine/          blobs `verify` found corrupt
/// images/gc.lock              imports hold it shared, gc exclusive
/// layers/<diff_id hex>/       LayerStore
/// ```
///
/// `Image/` owns: the content store, OCI/Docker document parsing, import,
/// the local index, the allowlist, resolving an image for a run, verify, gc,
/// scans; `Image/Unpack/` owns turning one layer blob into one directory.
/// It must never: trust a byte before its digest is checked; write a blob,
/// index or allowlist except by temp file + rename; resolve anything for a
/// run that the allowlist does not pin; follow a symlink while removing a
/// layer; run a scanner through a shell.
public struct ImageStore: Sendable {
    public let state: StateDirectory
    public let content: ContentStore
    public let layers: LayerStore
    public let index: LocalImageIndex
    public let allowlist: Allowlist

    /// An import holds this shared from its first blob to its index write, so
    /// `gc` (exclusive) never removes blobs or layers an import has brought in
    /// but not yet named.
    package let gcLockPath: String

    public init(state: StateDirectory) throws(ImageError) {
        self.state = state
        content = try ContentStore(state: state)
        layers = try LayerStore(state: state)
        index = try LocalImageIndex(state: state)
        allowlist = try Allowlist(state: state)
        gcLockPath = FileIO.parent(of: index.path) + "/gc.lock"
    }

    /// The store of this user (`StateDirectory.forThisUser()`).
    public static func forThisUser() throws(ImageError) -> ImageStore {
        try ImageStore(state: .forThisUser())
    }

    /// Reads and validates a stored image by its manifest digest: the manifest
    /// and config are rehashed as they are read, and the config's diff_ids
    /// must pair with the layers one to one.
    public func loadImage(manifest digest: Digest, mediaType: String? = nil, platform: Platform? = .host) throws(ImageError) -> StoredImage {
        let bytes = try content.read(digest, what: "manifest")
        let what = "manifest \(digest)"
        guard case .manifest(let manifest) = try OCIDocument.parse(bytes, declaredMediaType: mediaType, what: what) else {
            throw .invalidDocument(what: what, reason: "is an image index, not a manifest")
        }
        let config = try loadConfig(manifest, manifestDigest: digest, platform: platform)
        return StoredImage(manifestDigest: digest, manifestSize: Int64(bytes.count), manifest: manifest, config: config)
    }

    func loadConfig(_ manifest: ImageManifest, manifestDigest: Digest, platform: Platform?) throws(ImageError) -> ImageConfig {
        let descriptor = manifest.config
        let bytes = try content.read(descriptor.digest, what: "config")
        guard Int64(bytes.count) == descriptor.size else {
            throw .sizeMismatch(digest: descriptor.digest, expectedSize: descriptor.size, actualSize: Int64(bytes.count))
        }
        let config = try ImageConfig.parse(bytes, what: "config \(descriptor.digest)", platform: platform)
        guard config.diffIDs.count == manifest.layers.count else {
            throw .invalidDocument(what: "manifest \(manifestDigest)",
                                   reason: "\(manifest.layers.count) layers but the config lists \(config.diffIDs.count) diff_ids")
        }
        return config
    }
}

/// A stored image: its manifest and config, validated.
public struct StoredImage: Sendable, Equatable {
    public let manifestDigest: Digest
    public let manifestSize: Int64
    public let manifest: ImageManifest
    public let config: ImageConfig

    public var configDigest: Digest { manifest.config.digest }

    /// Layers paired with their diff_ids, lowest first.
    public var layers: [(blob: Descriptor, diffID: Digest)] {
        Array(zip(manifest.layers, config.diffIDs)).map { (blob: $0.0, diffID: $0.1) }
    }

    public static func == (a: StoredImage, b: StoredImage) -> Bool {
        a.manifestDigest == b.manifestDigest
    }
}
