import SandboxSupport
/// An OCI platform (`os`/`architecture`[/`variant`]).
public struct Platform: Codable, Sendable, Hashable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
    }

    /// The platform this dgrid runs on: Linux and the architecture it was built for.
    public static var host: Platform {
        #if arch(x86_64)
        return Platform(architecture: "amd64", os: "linux")
        #elseif arch(arm64)
        return Platform(architecture: "arm64", os: "linux", variant: "v8")
        #elseif arch(s390x)
        return Platform(architecture: "s390x", os: "linux")
        #elseif arch(powerpc64le)
        return Platform(architecture: "ppc64le", os: "linux")
        #else
        return Platform(architecture: "unknown", os: "linux")
        #endif
    }

    public var description: String {
        "\(os)/\(architecture)" + (variant.map { "/\($0)" } ?? "")
    }

    /// Same os and architecture; a variant only matters when both name one
    /// (arm64 images usually omit "v8").
    func runs(on host: Platform) -> Bool {
        os == host.os && architecture == host.architecture
            && (variant == nil || host.variant == nil || variant == host.variant)
    }
}

/// A content descriptor: what a blob is, its digest and its size. Digests are
/// parsed (`Digest`), sizes must not be negative, media types must look like
/// media types; all at decode time.
public struct Descriptor: Codable, Sendable, Hashable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?

    public init(mediaType: String, digest: Digest, size: Int64, platform: Platform? = nil,
                annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
    }

    enum CodingKeys: String, CodingKey {
        case mediaType, digest, size, platform, annotations
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mediaType = try c.decode(String.self, forKey: .mediaType)
        guard OCIMediaType.isWellFormed(mediaType) else {
            throw DecodingError.dataCorruptedError(forKey: .mediaType, in: c,
                                                   debugDescription: "'\(UntrustedText.shown(mediaType, limit: 80))' is not a media type")
        }
        digest = try c.decode(Digest.self, forKey: .digest)
        size = try c.decode(Int64.self, forKey: .size)
        guard size >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "negative size \(size)")
        }
        platform = try c.decodeIfPresent(Platform.self, forKey: .platform)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
    }

    public static let refNameAnnotation = "org.opencontainers.image.ref.name"
}

/// An image index (OCI) or manifest list (Docker): one manifest per platform.
public struct ImageIndex: Sendable, Equatable {
    public var mediaType: String
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    /// The manifest for `platform`. An index entry without a platform is taken
    /// only when it is the single manifest in the index (a plain OCI layout).
    public func select(platform: Platform, indexDigest: Digest) throws(ImageError) -> Descriptor {
        let candidates = manifests.filter { descriptor in
            guard let candidate = descriptor.platform else { return false }
            return candidate.runs(on: platform)
                && (OCIMediaType.manifestTypes.contains(descriptor.mediaType) || OCIMediaType.indexTypes.contains(descriptor.mediaType))
        }
        // Prefer an exact variant match, then the first listed.
        if let exact = candidates.first(where: { $0.platform?.variant == platform.variant }) { return exact }
        if let first = candidates.first { return first }
        let unplatformed = manifests.filter { $0.platform == nil }
        if manifests.count == 1, let only = unplatformed.first { return only }
        throw .noMatchingPlatform(index: indexDigest, wanted: platform.description,
                                  available: manifests.compactMap { $0.platform?.description })
    }
}

/// An image manifest: a config and layers, lowest first.
public struct ImageManifest: Sendable, Equatable {
    public var mediaType: String
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?

    /// Layers per image dgrid accepts; overlayfs stacks about 500 lowerdirs at
    /// most and real images use far fewer, so more is a sign of abuse.
    public static let maxLayers = 128
}

/// A manifest or an index, parsed and validated.
public enum OCIDocument: Sendable, Equatable {
    case index(ImageIndex)
    case manifest(ImageManifest)

    /// Index entries dgrid looks at; real multi-platform indexes have dozens.
    public static let maxIndexEntries = 1024

    /// Parses `bytes` as an image index or manifest. `declaredMediaType` is
    /// what the referring descriptor said, when there is one; it must agree
    /// with the document's own `mediaType` and with its shape: an index has
    /// `manifests`; a manifest has `config` and `layers`; never both.
    public static func parse(_ bytes: [UInt8], declaredMediaType: String?, what: String) throws(ImageError) -> OCIDocument {
        let raw = try JSONDocument.decode(RawDocument.self, from: bytes, what: what)
        func refuse(_ reason: String) -> ImageError { .invalidDocument(what: what, reason: reason) }

        if let own = raw.mediaType, OCIMediaType.dockerSchema1.contains(own) {
            throw refuse("Docker schema 1 manifests are not supported (no config, no diff_ids); rebuild or re-push the image")
        }
        guard let version = raw.schemaVersion else { throw refuse("schemaVersion: missing") }
        guard version == 2 else {
            throw refuse(version == 1 ? "Docker schema 1 manifests are not supported; rebuild or re-push the image"
                                      : "schemaVersion \(version): only 2 is supported")
        }
        if raw.manifests != nil && (raw.layers != nil || raw.config != nil) {
            throw refuse("has both 'manifests' and 'config'/'layers': neither an index nor a manifest; refused as ambiguous")
        }
        if let own = raw.mediaType, let declared = declaredMediaType, own != declared {
            throw refuse("mediaType '\(UntrustedText.shown(own, limit: 100))' differs from the descriptor's '\(UntrustedText.shown(declared, limit: 100))'")
        }
        let inferred: String? = raw.manifests != nil ? OCIMediaType.ociIndex
            : (raw.config != nil || raw.layers != nil) ? OCIMediaType.ociManifest : nil
        guard let mediaType = raw.mediaType ?? declaredMediaType ?? inferred else {
            throw refuse("neither 'manifests' (an index) nor 'config' and 'layers' (a manifest)")
        }
        if OCIMediaType.indexTypes.contains(mediaType) {
            guard let manifests = raw.manifests, raw.config == nil, raw.layers == nil else {
                throw refuse("media type \(mediaType) says image index, but it has no 'manifests'")
            }
            guard manifests.count <= maxIndexEntries else {
                throw refuse("\(manifests.count) manifests, more than the \(maxIndexEntries) dgrid reads")
            }
            return .index(ImageIndex(mediaType: mediaType, manifests: manifests, annotations: raw.annotations))
        }
        guard OCIMediaType.manifestTypes.contains(mediaType) else {
            throw refuse("unknown media type '\(UntrustedText.shown(mediaType, limit: 100))': expected an OCI or Docker schema 2 manifest or index")
        }
        guard let config = raw.config, let layers = raw.layers, raw.manifests == nil else {
            throw refuse("media type \(mediaType) says manifest, but it lacks \(raw.config == nil ? "'config'" : "'layers'")")
        }
        guard OCIMediaType.configTypes.contains(config.mediaType) else {
            throw refuse("config media type '\(UntrustedText.shown(config.mediaType, limit: 100))' is not a container image config (an artifact?)")
        }
        guard !layers.isEmpty else { throw refuse("no layers: nothing to run") }
        guard layers.count <= ImageManifest.maxLayers else {
            throw refuse("\(layers.count) layers, more than the \(ImageManifest.maxLayers) dgrid accepts")
        }
        for (index, layer) in layers.enumerated() where !OCIMediaType.layerTypes.contains(layer.mediaType) {
            throw refuse("layers[\(index)]: unsupported layer media type '\(UntrustedText.shown(layer.mediaType, limit: 100))'")
        }
        return .manifest(ImageManifest(mediaType: mediaType, config: config, layers: layers, annotations: raw.annotations))
    }

    private struct RawDocument: Decodable {
        var schemaVersion: Int?
        var mediaType: String?
        var manifests: [Descriptor]?
        var config: Descriptor?
        var layers: [Descriptor]?
        var annotations: [String: String]?
    }
}
