import Glibc
import SandboxSupport

/// What one import brought in.
public struct ImportedImage: Sendable {
    public struct Layer: Sendable {
        public let blob: Descriptor
        public let diffID: Digest
        /// nil when the layer was already unpacked (by an earlier import).
        public let report: UnpackReport?

        package init(blob: Descriptor, diffID: Digest, report: UnpackReport?) {
            self.blob = blob
            self.diffID = diffID
            self.report = report
        }
    }

    /// The local names it was indexed under (`repository:tag`).
    public let names: [String]
    /// The platform-specific manifest the names point to.
    public let manifest: Descriptor
    public let configDigest: Digest
    public let layers: [Layer]
    /// Config values a run will refuse (a user name, a relative WorkingDir…);
    /// the image is stored, but `allow` and runs refuse it until they change.
    public let warnings: [String]

    package init(names: [String], manifest: Descriptor, configDigest: Digest, layers: [Layer], warnings: [String]) {
        self.names = names
        self.manifest = manifest
        self.configDigest = configDigest
        self.layers = layers
        self.warnings = warnings
    }
}

/// `dgrid image import`: brings an image in from an OCI image layout
/// directory, an OCI layout tar (`skopeo copy … oci-archive:`), or a `docker
/// save` tar (plain or gzip/zstd compressed).
///
/// **Decision (docs/ARCHITECTURE.md §5):** every blob is verified by digest and size as it
/// enters the content store, and every layer is unpacked (diff_id checked)
/// before any name is written to the local index. A bad image is refused
/// here, with nothing of it referenced; blobs it left are unreferenced
/// content for `gc`, and layer directories only ever appear complete.
public struct ImageImporter: Sendable {
    public let store: ImageStore
    public let platform: Platform

    public init(store: ImageStore, platform: Platform = .host) {
        self.store = store
        self.platform = platform
    }

    /// Imports every image at `path` (one for `docker save` of one image or a
    /// typical layout). `name` (`repository[:tag]`) names the image when the
    /// archive holds exactly one; without it the archive's own names are used
    /// (`io.containerd.image.name`, a full `org.opencontainers.image.ref.name`,
    /// docker's `RepoTags`).
    public func importImages(from path: String, name: String? = nil) throws(ImageError) -> [ImportedImage] {
        var override: String?
        if let name {
            let reference = try ImageReference(parsing: name)
            guard reference.digest == nil else {
                throw .invalidReference(text: name, reason: "a local name cannot carry a digest; the digest is the image's own")
            }
            override = reference.name
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw .system(operation: "import", path: path, errno: errno) }

        let gcLock = try FileLock(path: store.gcLockPath, mode: .shared)
        let source: Source
        if info.st_mode & S_IFMT == S_IFDIR {
            source = try layoutDirectory(path)
        } else {
            source = try archive(path)
        }
        guard !source.candidates.isEmpty else { throw .importSource(path: path, reason: "it holds no image") }
        if override != nil && source.candidates.count > 1 {
            throw .importSource(path: path, reason: "it holds \(source.candidates.count) images; --name can name only one (leave it out to use the names in the archive)")
        }

        // Names first: a nameless image would be unreferenced the moment it lands.
        var named: [(Candidate, [String])] = []
        for candidate in source.candidates {
            let names: [String]
            if let override { names = [override] } else { names = try candidate.names(path: path) }
            named.append((candidate, names))
        }

        var imported: [ImportedImage] = []
        for (candidate, names) in named {
            imported.append(try bringIn(candidate, names: names, source: source, path: path))
        }
        try store.index.set(imported.flatMap { image in image.names.map { LocalImage(name: $0, manifest: image.manifest) } })
        _ = consume gcLock
        return imported
    }

    // MARK: - one image

    private func bringIn(_ candidate: Candidate, names: [String], source: Source, path: String) throws(ImageError) -> ImportedImage {
        let manifestDescriptor: Descriptor
        switch candidate.kind {
        case .descriptor(let top):
            manifestDescriptor = try resolveManifest(top, source: source)
        case .docker(let entry):
            manifestDescriptor = try synthesizeManifest(entry, source: source, path: path)
        }
        let image = try store.loadImage(manifest: manifestDescriptor.digest, mediaType: manifestDescriptor.mediaType,
                                        platform: platform)
        // Every layer blob verified before the first is unpacked: a missing or
        // wrong blob is refused before minutes of unpacking.
        for layer in image.manifest.layers {
            try fetch(layer, from: source)
        }
        var layers: [ImportedImage.Layer] = []
        for (blob, diffID) in image.layers {
            let report = try store.layers.unpack(blobPath: store.content.path(for: blob.digest), mediaType: blob.mediaType,
                                                 diffID: diffID)
            layers.append(.init(blob: blob, diffID: diffID, report: report))
        }
        var warnings: [String] = []
        do {
            _ = try ImageRunConfig(validating: image.config, image: image.manifestDigest)
        } catch {
            warnings.append(error.description)
        }
        var stored = Descriptor(mediaType: manifestDescriptor.mediaType, digest: manifestDescriptor.digest,
                                size: manifestDescriptor.size, platform: manifestDescriptor.platform)
        if stored.platform == nil, let os = image.config.os, let architecture = image.config.architecture {
            stored.platform = Platform(architecture: architecture, os: os, variant: image.config.variant)
        }
        return ImportedImage(names: names, manifest: stored, configDigest: image.configDigest, layers: layers, warnings: warnings)
    }

    /// Follows a top-level descriptor through at most one image index (the
    /// platform's manifest) to a manifest, fetching each document.
    private func resolveManifest(_ top: Descriptor, source: Source) throws(ImageError) -> Descriptor {
        var descriptor = top
        for _ in 0..<3 {
            guard OCIMediaType.indexTypes.contains(descriptor.mediaType) || OCIMediaType.manifestTypes.contains(descriptor.mediaType) else {
                throw .invalidDocument(what: "descriptor \(descriptor.digest)",
                                       reason: "media type '\(UntrustedText.shown(descriptor.mediaType, limit: 100))' is neither an image manifest nor an index")
            }
            guard descriptor.size <= Int64(ContentStore.documentLimit) else {
                throw .blobTooLarge(digest: descriptor.digest, what: "manifest", size: descriptor.size, limit: Int64(ContentStore.documentLimit))
            }
            try fetch(descriptor, from: source)
            let bytes = try store.content.read(descriptor.digest, what: "manifest")
            let what = (OCIMediaType.indexTypes.contains(descriptor.mediaType) ? "image index " : "manifest ") + descriptor.digest.description
            switch try OCIDocument.parse(bytes, declaredMediaType: descriptor.mediaType, what: what) {
            case .manifest(let manifest):
                try fetch(manifest.config, from: source)
                return descriptor
            case .index(let index):
                descriptor = try index.select(platform: platform, indexDigest: descriptor.digest)
            }
        }
        throw .invalidDocument(what: "image index \(top.digest)", reason: "indexes nested more than twice")
    }

    /// Makes sure `descriptor`'s blob is in the content store, verified.
    private func fetch(_ descriptor: Descriptor, from source: Source) throws(ImageError) {
        if let size = store.content.size(of: descriptor.digest) {
            // Same digest, same content: a different size is the descriptor lying.
            guard size == descriptor.size else {
                throw .sizeMismatch(digest: descriptor.digest, expectedSize: descriptor.size, actualSize: size)
            }
            return
        }
        switch source.origin {
        case .directory(let root):
            let path = "\(root)/blobs/sha256/\(descriptor.digest.hex)"
            let fd: Int32
            do {
                fd = try FileIO.openRegular(path)
            } catch {
                if case .system(_, _, ENOENT) = error {
                    throw .importSource(path: root, reason: "the layout lacks blob \(descriptor.digest)")
                }
                throw error
            }
            defer { close(fd) }
            var input = FileDescriptorSource(fd: fd, description: path)
            try store.content.ingest(from: &input, expected: descriptor.digest, size: descriptor.size)
        case .archive(let path):
            throw .importSource(path: path, reason: "the archive lacks blob \(descriptor.digest)")
        }
    }

    /// `docker save`'s manifest.json has no registry manifest: write the OCI
    /// manifest it implies (config + layers, each layer's media type from its
    /// content) into the store, so the image is stored like any other.
    private func synthesizeManifest(_ entry: DockerSaveEntry, source: Source, path: String) throws(ImageError) -> Descriptor {
        let configBlob = try source.member(entry.Config, archive: path)
        let configBytes = try store.content.read(configBlob.digest, what: "config")
        let config = try ImageConfig.parse(configBytes, what: "config \(entry.Config)", platform: platform)
        guard config.diffIDs.count == entry.Layers.count else {
            throw .importSource(path: path, reason: "manifest.json lists \(entry.Layers.count) layers but the config has \(config.diffIDs.count) diff_ids")
        }
        guard !entry.Layers.isEmpty, entry.Layers.count <= ImageManifest.maxLayers else {
            throw .importSource(path: path, reason: "\(entry.Layers.count) layers; dgrid accepts 1 to \(ImageManifest.maxLayers)")
        }
        var layers: [Descriptor] = []
        for (layerPath, diffID) in zip(entry.Layers, config.diffIDs) {
            let blob = try source.member(layerPath, archive: path)
            let mediaType = blob.digest == diffID ? OCIMediaType.ociLayerTar : try compressedLayerType(blob.digest)
            layers.append(Descriptor(mediaType: mediaType, digest: blob.digest, size: blob.size))
        }
        let manifest = SynthesizedManifest(
            schemaVersion: 2, mediaType: OCIMediaType.ociManifest,
            config: Descriptor(mediaType: OCIMediaType.ociConfig, digest: configBlob.digest, size: configBlob.size),
            layers: layers)
        let bytes = try JSONDocument.encode(manifest)
        let digest = try store.content.ingest(bytes: bytes)
        return Descriptor(mediaType: OCIMediaType.ociManifest, digest: digest, size: Int64(bytes.count))
    }

    /// A `docker save` layer whose digest is not its diff_id is compressed
    /// (containerd-backed Docker keeps registry blobs): the magic says how.
    private func compressedLayerType(_ digest: Digest) throws(ImageError) -> String {
        let path = store.content.path(for: digest)
        let fd = FileIO.open(path, O_RDONLY)
        guard fd >= 0 else { throw .system(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 4)
        let n = magic.withUnsafeMutableBytes { FileIO.read(fd, into: $0) }
        if n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b { return OCIMediaType.ociLayerGzip }
        if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] { return OCIMediaType.ociLayerZstd }
        // Neither: as a plain tar the unpacker refuses it for its diff_id.
        return OCIMediaType.ociLayerTar
    }

    private struct SynthesizedManifest: Encodable {
        let schemaVersion: Int
        let mediaType: String
        let config: Descriptor
        let layers: [Descriptor]
    }

    // MARK: - sources

    struct DockerSaveEntry: Decodable {
        // docker's own capitalized names
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    struct Candidate {
        enum Kind {
            case descriptor(Descriptor)
            case docker(DockerSaveEntry)
        }

        let kind: Kind

        /// The names this image carries in its archive.
        func names(path: String) throws(ImageError) -> [String] {
            var texts: [String] = []
            switch kind {
            case .descriptor(let descriptor):
                let annotations = descriptor.annotations ?? [:]
                if let full = annotations["io.containerd.image.name"] {
                    texts = [full]
                } else if let ref = annotations[Descriptor.refNameAnnotation], ref.contains("/") || ref.contains(":") {
                    // A bare ref.name ("latest") is only a tag: not a name.
                    texts = [ref]
                }
            case .docker(let entry):
                texts = entry.RepoTags ?? []
            }
            guard !texts.isEmpty else {
                throw .importSource(path: path, reason: "the image has no name in the archive; give one with --name NAME[:TAG]")
            }
            var names: [String] = []
            for text in texts {
                let reference: ImageReference
                do {
                    reference = try ImageReference(parsing: text)
                } catch {
                    throw .importSource(path: path, reason: "\(error); give a name with --name NAME[:TAG]")
                }
                if !names.contains(reference.name) { names.append(reference.name) }
            }
            return names
        }
    }

    struct Source {
        enum Origin {
            case directory(String)
            case archive(String)
        }

        let origin: Origin
        let candidates: [Candidate]
        /// Archive members stored in the content store, by normalized name.
        var blobs: [String: (digest: Digest, size: Int64)] = [:]
        /// Archive links, by normalized name → normalized target.
        var links: [String: String] = [:]

        /// The stored blob an archive member name refers to, following links.
        func member(_ name: String, archive: String) throws(ImageError) -> (digest: Digest, size: Int64) {
            guard var current = TarMembers.normalize(name) else {
                throw .importSource(path: archive, reason: "manifest.json names '\(UntrustedText.shown(name))', which leaves the archive")
            }
            for _ in 0..<16 {
                if let blob = blobs[current] { return blob }
                guard let target = links[current] else { break }
                current = target
            }
            throw .importSource(path: archive, reason: "manifest.json names '\(UntrustedText.shown(name))', which is not a file in the archive")
        }
    }

    private func layoutDirectory(_ path: String) throws(ImageError) -> Source {
        let layoutFile = "\(path)/oci-layout"
        guard FileIO.exists(layoutFile) else {
            let hint = FileIO.exists("\(path)/manifest.json") ? " (docker save output: give the tar itself)" : ""
            throw .importSource(path: path, reason: "not an OCI image layout: no oci-layout file\(hint)")
        }
        let layout = try FileIO.readFile(layoutFile, limit: 64 * 1024, what: "oci-layout")
        let index = try FileIO.readFile("\(path)/index.json", limit: ContentStore.documentLimit, what: "\(path)/index.json")
        return Source(origin: .directory(path), candidates: try layoutCandidates(layout: layout, index: index, path: path))
    }

    private func layoutCandidates(layout: [UInt8], index: [UInt8], path: String) throws(ImageError) -> [Candidate] {
        struct LayoutFile: Decodable {
            var imageLayoutVersion: String
        }
        let version = try JSONDocument.decode(LayoutFile.self, from: layout, what: "\(path): oci-layout").imageLayoutVersion
        guard version.hasPrefix("1.") else {
            throw .importSource(path: path, reason: "oci-layout version '\(UntrustedText.shown(version, limit: 20))'; 1.x is supported")
        }
        guard case .index(let top) = try OCIDocument.parse(index, declaredMediaType: OCIMediaType.ociIndex, what: "\(path): index.json") else {
            throw .importSource(path: path, reason: "index.json is not an image index")
        }
        // Only images: a layout may also hold signatures or attestations.
        return top.manifests
            .filter { OCIMediaType.manifestTypes.contains($0.mediaType) || OCIMediaType.indexTypes.contains($0.mediaType) }
            .map { Candidate(kind: .descriptor($0)) }
    }

    /// Streams every member of the archive: blobs into the content store
    /// (verified by the digest in their name, or hashed to learn it for
    /// `docker save` layers and configs), the small JSON files into memory.
    private func archive(_ path: String) throws(ImageError) -> Source {
        let tar = try TarMembers(path: path)
        var documents: [String: [UInt8]] = [:]
        var blobs: [String: (digest: Digest, size: Int64)] = [:]
        var links: [String: String] = [:]
        var seen: Set<String> = []
        while let member = try tar.next() {
            guard let name = member.name, !name.isEmpty else { continue }
            if case .directory = member.kind { continue }
            guard seen.insert(name).inserted else {
                throw .importSource(path: path, reason: "member '\(UntrustedText.shown(name))' appears twice; refused as ambiguous")
            }
            switch member.kind {
            case .file(let size):
                let components = name.split(separator: "/")
                if components.count == 3 && components[0] == "blobs" && components[1] == "sha256" {
                    let digest: Digest
                    do {
                        digest = try Digest(parsing: "sha256:\(components[2])")
                    } catch {
                        throw .importSource(path: path, reason: "member '\(UntrustedText.shown(name))': \(error)")
                    }
                    if store.content.size(of: digest) != size {
                        var data = tar.dataSource(describing: member)
                        try store.content.ingest(from: &data, expected: digest, size: size)
                    }
                    blobs[name] = (digest, size)
                } else if ["index.json", "oci-layout", "manifest.json"].contains(name) {
                    documents[name] = try tar.readData(of: member, limit: ContentStore.documentLimit)
                } else if name.hasSuffix("/layer.tar") || name == "layer.tar" || (name.hasSuffix(".json") && components.count == 1) {
                    var data = tar.dataSource(describing: member)
                    blobs[name] = (try store.content.ingestComputingDigest(from: &data, size: size), size)
                }
            case .symlink(let target):
                if let resolved = TarMembers.resolve(link: target, from: name) { links[name] = resolved }
            case .hardlink(let target):
                if let resolved = TarMembers.normalize(target) { links[name] = resolved }
            case .directory, .other:
                continue
            }
        }
        // Newer `docker save` writes both; the OCI layout is the richer one.
        if let layout = documents["oci-layout"], let index = documents["index.json"] {
            return Source(origin: .archive(path), candidates: try layoutCandidates(layout: layout, index: index, path: path),
                          blobs: blobs, links: links)
        }
        if let manifest = documents["manifest.json"] {
            let entries = try JSONDocument.decode([DockerSaveEntry].self, from: manifest, what: "\(path): manifest.json")
            return Source(origin: .archive(path), candidates: entries.map { Candidate(kind: .docker($0)) }, blobs: blobs, links: links)
        }
        throw .importSource(path: path, reason: "neither an OCI layout (oci-layout, index.json) nor a docker save archive (manifest.json)")
    }
}
