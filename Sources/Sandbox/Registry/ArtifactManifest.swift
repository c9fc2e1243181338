import SandboxImages
import SandboxSupport

/// A task's registry artifacts as one OCI artifact (image-spec 1.1,
/// docs/ARCHITECTURE.md §10): an image manifest whose `artifactType` says what
/// it is, whose config is the empty descriptor (the 2-byte `{}` blob), and
/// one layer per file — its own media type, titled by its path under
/// `/output` (`org.opencontainers.image.title`). Encoded with sorted keys, so
/// the same files make the same manifest, the same digest and the same tag.
public struct ArtifactManifest: Equatable, Sendable {
    public struct Layer: Equatable, Sendable {
        public var title: String
        public var digest: Digest
        public var size: Int64
        public var mediaType: String

        public init(title: String, digest: Digest, size: Int64, mediaType: String) {
            self.title = title
            self.digest = digest
            self.size = size
            self.mediaType = mediaType
        }
    }

    public static let artifactType = "application/vnd.dgrid.task.output.v1"
    public static let emptyMediaType = "application/vnd.oci.empty.v1+json"
    public static let emptyBlob: [UInt8] = Array("{}".utf8)
    public static let emptyDescriptor = Descriptor(mediaType: emptyMediaType, digest: Digest(of: emptyBlob), size: 2)
    public static let titleAnnotation = "org.opencontainers.image.title"
    /// The task the files came from, in the manifest's annotations.
    public static let taskAnnotation = ArtifactPushRequest.taskAnnotation
    /// Beyond this a manifest is refused (the registry's own limit is 4 MiB; 1,000 files fit easily).
    static let maxBytes = 4 << 20

    public var layers: [Layer]
    public var annotations: [String: String]

    public init(layers: [Layer], annotations: [String: String] = [:]) {
        self.layers = layers
        self.annotations = annotations
    }

    /// The JSON document's shape.
    private struct Document: Codable {
        var schemaVersion: Int
        var mediaType: String
        var artifactType: String
        var config: Descriptor
        var layers: [Descriptor]
        var annotations: [String: String]?
    }

    public func encoded() throws(ImageError) -> [UInt8] {
        let document = Document(
            schemaVersion: 2, mediaType: OCIMediaType.ociManifest, artifactType: Self.artifactType, config: Self.emptyDescriptor,
            layers: layers.map { Descriptor(mediaType: $0.mediaType, digest: $0.digest, size: $0.size, annotations: [Self.titleAnnotation: $0.title]) },
            annotations: annotations.isEmpty ? nil : annotations)
        return try JSONDocument.encode(document)
    }

    /// A manifest read back (tests, tools): it must be this kind of artifact —
    /// schema 2, an OCI image manifest, our `artifactType`, the empty config,
    /// every layer titled.
    public static func parse(_ bytes: [UInt8]) throws(ImageError) -> ArtifactManifest {
        let what = "artifact manifest \(Digest(of: bytes).short)"
        guard bytes.count <= maxBytes else {
            throw .blobTooLarge(digest: Digest(of: bytes), what: "artifact manifest", size: Int64(bytes.count), limit: Int64(maxBytes))
        }
        let document = try JSONDocument.decode(Document.self, from: bytes, what: what)
        func refuse(_ reason: String) -> ImageError { .invalidDocument(what: what, reason: reason) }
        guard document.schemaVersion == 2 else { throw refuse("schemaVersion \(document.schemaVersion), not 2") }
        guard document.mediaType == OCIMediaType.ociManifest else { throw refuse("mediaType is not \(OCIMediaType.ociManifest)") }
        guard document.artifactType == artifactType else {
            throw refuse("artifactType '\(UntrustedText.shown(document.artifactType, limit: 80))' is not \(artifactType)")
        }
        guard document.config.mediaType == emptyMediaType, document.config.digest == emptyDescriptor.digest, document.config.size == 2 else {
            throw refuse("the config is not the empty descriptor")
        }
        var layers: [Layer] = []
        for layer in document.layers {
            guard let title = layer.annotations?[titleAnnotation], !title.isEmpty else {
                throw refuse("layer \(layer.digest.short) has no \(titleAnnotation)")
            }
            layers.append(Layer(title: title, digest: layer.digest, size: layer.size, mediaType: layer.mediaType))
        }
        return ArtifactManifest(layers: layers, annotations: document.annotations ?? [:])
    }
}
