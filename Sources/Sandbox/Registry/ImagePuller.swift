import SandboxImages
import SandboxSupport

/// What a pull reports while it runs (the CLI draws it on a terminal).
public enum PullProgress: Sendable {
    /// A blob transfer started (`total` bytes) or advanced (`received`).
    case blob(digest: Digest, received: Int64, total: Int64)
    /// The blob was already in the store.
    case present(digest: Digest, total: Int64)
    /// Layer `index` (of `count`) is being unpacked.
    case unpacking(diffID: Digest, index: Int, count: Int)
}

/// `dgrid image pull NAME@sha256:…` and the registry side of `dgrid image
/// allow REGISTRY/NAME:TAG`.
///
/// **Decisions (docs/ARCHITECTURE.md §5):** tasks run images by digest only, so a pull
/// names a digest (a tag is refused); the digest must be allowlisted before
/// any byte is fetched (`ImageResolver.allowlisted` — the allowlist is the
/// only thing read until then); every blob is verified by digest and size as
/// it streams into the content store, and every layer is unpacked (diff_id
/// checked) before the name is written to the local index. A bad image is
/// refused with nothing of it referenced; what it left is unreferenced
/// content for `gc`.
public struct ImagePuller: Sendable {
    public let store: ImageStore
    public let options: RegistryClient.Options
    public let platform: Platform

    public init(store: ImageStore, options: RegistryClient.Options, platform: Platform = .host) {
        self.store = store
        self.options = options
        self.platform = platform
    }

    /// Pulls `reference` (`[REGISTRY/]NAME[:TAG]@sha256:…`). The local index
    /// names it after the allowlist entries of that repository pinning the
    /// digest (`REGISTRY/NAME:TAG`), else `reference.name`.
    public func pull(_ reference: String, progress: (@Sendable (PullProgress) -> Void)? = nil) throws(RegistryError) -> ImportedImage {
        let parsed: ImageReference
        do {
            parsed = try ImageReference(parsing: reference)
        } catch {
            throw .image(error)
        }
        guard let digest = parsed.digest else { throw .tagNotAllowed(reference: reference) }
        // The gate: nothing leaves this host for an image nobody allowed.
        do {
            _ = try ImageResolver(store: store, platform: platform).allowlisted(digest.description)
        } catch {
            if case .notAllowlisted = error { throw .image(.notAllowlisted(reference)) }
            throw .image(error)
        }
        var names: [String] = []
        do {
            for entry in try store.allowlist.entries() where entry.digest == digest {
                if let named = try? ImageReference(parsing: entry.name), named.repository == parsed.repository,
                   !names.contains(entry.name) {
                    names.append(entry.name)
                }
            }
        } catch {
            throw .image(error)
        }
        if names.isEmpty { names = [parsed.name] }

        let gcLock: FileLock
        do {
            gcLock = try FileLock(path: store.gcLockPath, mode: .shared)
        } catch {
            throw .image(error)
        }
        let client = try RegistryClient(repository: parsed.repository, options: options)
        defer { client.shutdown() }

        let manifest = try resolveManifest(digest, client: client)
        let image: StoredImage
        do {
            image = try store.loadImage(manifest: manifest.digest, mediaType: manifest.mediaType, platform: platform)
        } catch {
            throw .image(error)
        }
        // Every layer verified before the first is unpacked.
        for layer in image.manifest.layers {
            try fetch(layer, client: client, progress: progress)
        }
        var layers: [ImportedImage.Layer] = []
        for (index, (blob, diffID)) in image.layers.enumerated() {
            progress?(.unpacking(diffID: diffID, index: index + 1, count: image.layers.count))
            do {
                let report = try store.layers.unpack(blobPath: store.content.path(for: blob.digest), mediaType: blob.mediaType,
                                                     diffID: diffID)
                layers.append(.init(blob: blob, diffID: diffID, report: report))
            } catch {
                throw .image(error)
            }
        }
        var warnings: [String] = []
        do {
            _ = try ImageRunConfig(validating: image.config, image: image.manifestDigest)
        } catch {
            warnings.append(error.description)
        }
        var stored = manifest
        stored.annotations = nil
        if stored.platform == nil, let os = image.config.os, let architecture = image.config.architecture {
            stored.platform = Platform(architecture: architecture, os: os, variant: image.config.variant)
        }
        do {
            try store.index.set(names.map { LocalImage(name: $0, manifest: stored) })
        } catch {
            throw .image(error)
        }
        _ = consume gcLock
        return ImportedImage(names: names, manifest: stored, configDigest: image.configDigest, layers: layers, warnings: warnings)
    }

    /// The platform manifest for the tag `reference.tag` on the registry:
    /// the manifest's (or, for an index, the `platform` entry's) digest,
    /// computed from the bytes received. `Docker-Content-Digest` is only
    /// checked against it, never trusted. Fetches no blob.
    public func resolveTag(_ reference: ImageReference) throws(RegistryError) -> Descriptor {
        let tag = reference.tag ?? "latest"
        let client = try RegistryClient(repository: reference.repository, options: options)
        defer { client.shutdown() }
        let (bytes, mediaType, header) = try client.manifest(tag)
        let computed = Digest(of: bytes)
        if let header, header != computed.description {
            throw .digestHeaderMismatch(host: client.location.registry, reference: reference.name, header: header, computed: computed)
        }
        let what = "manifest \(reference.name) (\(computed))"
        let document: OCIDocument
        do {
            document = try OCIDocument.parse(bytes, declaredMediaType: mediaType, what: what)
        } catch {
            throw .image(error)
        }
        switch document {
        case .manifest(let manifest):
            return Descriptor(mediaType: manifest.mediaType, digest: computed, size: Int64(bytes.count))
        case .index(let index):
            let selected: Descriptor
            do {
                selected = try index.select(platform: platform, indexDigest: computed)
            } catch {
                throw .image(error)
            }
            guard OCIMediaType.manifestTypes.contains(selected.mediaType) else {
                throw .image(.invalidDocument(what: "image index \(computed)", reason: "the \(platform) entry is not an image manifest"))
            }
            // Check it exists and is what the index says.
            let (manifestBytes, _, _) = try client.manifest(selected.digest.description)
            let actual = Digest(of: manifestBytes)
            guard actual == selected.digest else { throw .image(.digestMismatch(expected: selected.digest, actual: actual)) }
            do {
                _ = try OCIDocument.parse(manifestBytes, declaredMediaType: selected.mediaType, what: "manifest \(selected.digest)")
            } catch {
                throw .image(error)
            }
            return selected
        }
    }

    // MARK: - steps

    /// Follows `digest` through at most one index to the platform manifest,
    /// storing each document (verified) and the config.
    private func resolveManifest(_ digest: Digest, client: RegistryClient) throws(RegistryError) -> Descriptor {
        var current = digest
        var declared: String?
        for _ in 0..<3 {
            let bytes = try document(current, client: client)
            let what = "manifest \(current)"
            let parsed: OCIDocument
            do {
                parsed = try OCIDocument.parse(bytes, declaredMediaType: declared, what: what)
            } catch {
                throw .image(error)
            }
            switch parsed {
            case .manifest(let manifest):
                guard manifest.config.size <= Int64(ContentStore.documentLimit) else {
                    throw .image(.blobTooLarge(digest: manifest.config.digest, what: "config", size: manifest.config.size,
                                               limit: Int64(ContentStore.documentLimit)))
                }
                try fetch(manifest.config, client: client, progress: nil)
                return Descriptor(mediaType: manifest.mediaType, digest: current, size: Int64(bytes.count))
            case .index(let index):
                let selected: Descriptor
                do {
                    selected = try index.select(platform: platform, indexDigest: current)
                } catch {
                    throw .image(error)
                }
                guard selected.size <= Int64(ContentStore.documentLimit) else {
                    throw .image(.blobTooLarge(digest: selected.digest, what: "manifest", size: selected.size,
                                               limit: Int64(ContentStore.documentLimit)))
                }
                current = selected.digest
                declared = selected.mediaType
            }
        }
        throw .image(.invalidDocument(what: "image index \(digest)", reason: "indexes nested more than twice"))
    }

    /// A manifest or index by digest: from the store when there, else from
    /// the registry, verified and stored.
    private func document(_ digest: Digest, client: RegistryClient) throws(RegistryError) -> [UInt8] {
        if store.content.has(digest), let bytes = try? store.content.read(digest, what: "manifest") {
            return bytes
        }
        let (bytes, _, _) = try client.manifest(digest.description)
        var source = MemorySource(bytes, description: "registry \(client.location.registry)")
        do {
            // Hashes and refuses a manifest that is not the digest asked for.
            try store.content.ingest(from: &source, expected: digest, size: Int64(bytes.count))
        } catch {
            throw .image(error)
        }
        return bytes
    }

    /// Makes sure blob `descriptor` is in the store, verified.
    private func fetch(_ descriptor: Descriptor, client: RegistryClient,
                       progress: (@Sendable (PullProgress) -> Void)?) throws(RegistryError) {
        if let size = store.content.size(of: descriptor.digest) {
            guard size == descriptor.size else {
                throw .image(.sizeMismatch(digest: descriptor.digest, expectedSize: descriptor.size, actualSize: size))
            }
            progress?(.present(digest: descriptor.digest, total: descriptor.size))
            return
        }
        progress?(.blob(digest: descriptor.digest, received: 0, total: descriptor.size))
        try client.fetchBlob(descriptor, into: store.content) { received in
            progress?(.blob(digest: descriptor.digest, received: received, total: descriptor.size))
        }
    }
}

extension ImageAdmin {
    /// `dgrid image allow REGISTRY/NAME:TAG` for a name not in the local
    /// index: resolves the tag on the registry (`ImagePuller.resolveTag`) and
    /// pins the platform manifest's digest. Pulls nothing; the image can run
    /// once `dgrid image pull` has brought it in.
    public func allowFromRegistry(_ reference: String, approvedBy: String?, note: String?,
                                  options: RegistryClient.Options, platform: Platform = .host) throws(RegistryError) -> AllowResult {
        let parsed: ImageReference
        do {
            parsed = try ImageReference(parsing: reference)
        } catch {
            throw .image(error)
        }
        guard parsed.digest == nil else {
            throw .image(.invalidReference(text: reference, reason: "a registry tag is resolved without @DIGEST; pull NAME@DIGEST first to pin a digest"))
        }
        guard RegistryLocation.namesRegistry(parsed.repository) else { throw .image(.unknownImage(parsed.name)) }
        let manifest = try ImagePuller(store: store, options: options, platform: platform).resolveTag(parsed)
        do {
            let previous = try store.allowlist.entry(named: parsed.name)
            let same = previous?.digest == manifest.digest
            let now = Timestamp.now()
            let entry = AllowlistEntry(
                name: parsed.name, digest: manifest.digest,
                addedAt: same ? (previous?.addedAt ?? now) : now,
                approvedBy: approvedBy ?? (same ? previous?.approvedBy : nil),
                note: note ?? (same ? previous?.note : nil),
                lastScanned: same ? previous?.lastScanned : nil,
                vulnerabilities: same ? previous?.vulnerabilities : nil)
            let replaced = try store.allowlist.put(entry)
            return AllowResult(entry: entry, previous: replaced)
        } catch {
            throw .image(error)
        }
    }
}
