import SandboxSupport
/// One named image in the local index: a name and its (platform-specific)
/// manifest descriptor.
public struct LocalImage: Sendable, Equatable {
    /// `repository:tag`, as `ImageReference.name` spells it.
    public let name: String
    public let manifest: Descriptor

    public init(name: String, manifest: Descriptor) {
        self.name = name
        self.manifest = manifest
    }
}

/// `$DGRID_HOME/images/index.json`: local names → manifest digests, in the OCI
/// image-index format with `org.opencontainers.image.ref.name` annotations
/// (so the images directory reads like an OCI layout to other tools).
/// Updates are atomic and serialized by an flock (`LockedFile`).
public final class LocalImageIndex: Sendable {
    public let path: String
    private let file: LockedFile

    public init(state: StateDirectory) throws(ImageError) {
        let directory = try state.imageDirectory("images")
        path = directory + "/index.json"
        file = LockedFile(path: path)
    }

    /// Every named image, sorted by name.
    public func images() throws(ImageError) -> [LocalImage] {
        try decode(try file.read(what: "image index \(path)"))
    }

    /// The image stored under `name` (`repository:tag`), if any.
    public func image(named name: String) throws(ImageError) -> LocalImage? {
        try images().first { $0.name == name }
    }

    /// Names whose manifest is `digest`.
    public func images(with digest: Digest) throws(ImageError) -> [LocalImage] {
        try images().filter { $0.manifest.digest == digest }
    }

    /// Sets each name to its descriptor (replacing what the name pointed to),
    /// all in one atomic write.
    public func set(_ entries: [LocalImage]) throws(ImageError) {
        try file.update(what: "image index \(path)") { (current) throws(ImageError) -> ([UInt8]?, Void) in
            var images = try decode(current)
            for entry in entries {
                images.removeAll { $0.name == entry.name }
                images.append(entry)
            }
            return (try encode(images), ())
        }
    }

    /// Removes a name; returns whether it was there.
    @discardableResult
    public func remove(name: String) throws(ImageError) -> Bool {
        try file.update(what: "image index \(path)") { (current) throws(ImageError) -> ([UInt8]?, Bool) in
            var images = try decode(current)
            let before = images.count
            images.removeAll { $0.name == name }
            return images.count == before ? (nil, false) : (try encode(images), true)
        }
    }

    private struct IndexFile: Codable {
        var schemaVersion: Int
        var mediaType: String?
        var manifests: [Descriptor]
    }

    private func decode(_ bytes: [UInt8]?) throws(ImageError) -> [LocalImage] {
        guard let bytes else { return [] }
        let index = try JSONDocument.decode(IndexFile.self, from: bytes, what: "image index \(path)")
        var seen: Set<String> = []
        var result: [LocalImage] = []
        // Later entries win, as `set` appends; entries without a name are not ours.
        for descriptor in index.manifests.reversed() {
            guard let name = descriptor.annotations?[Descriptor.refNameAnnotation], seen.insert(name).inserted else { continue }
            result.append(LocalImage(name: name, manifest: descriptor))
        }
        return result.sorted { $0.name < $1.name }
    }

    private func encode(_ images: [LocalImage]) throws(ImageError) -> [UInt8] {
        let manifests = images.sorted { $0.name < $1.name }.map { image in
            var descriptor = image.manifest
            var annotations = descriptor.annotations ?? [:]
            annotations[Descriptor.refNameAnnotation] = image.name
            descriptor.annotations = annotations
            return descriptor
        }
        return try JSONDocument.encode(IndexFile(schemaVersion: 2, mediaType: OCIMediaType.ociIndex, manifests: manifests),
                                       pretty: true)
    }
}
