import SandboxSupport
/// A layer blob's media type, reduced to what unpacking needs: the compression.
/// The "nondistributable"/"foreign" variants differ only in where the blob may
/// be pushed, not in content, so they map to the same cases.
public enum LayerMediaType: Sendable, Hashable, Codable, CustomStringConvertible {
    case tar
    case tarGzip
    case tarZstd

    /// Parses an OCI or Docker layer media type; anything else (a config, a
    /// manifest, an unknown compression) is refused by name.
    public init(parsing text: String) throws(UnpackError) {
        switch text {
        case "application/vnd.oci.image.layer.v1.tar",
             "application/vnd.oci.image.layer.nondistributable.v1.tar":
            self = .tar
        case "application/vnd.oci.image.layer.v1.tar+gzip",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
            self = .tarGzip
        case "application/vnd.oci.image.layer.v1.tar+zstd",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
            self = .tarZstd
        default:
            throw .unsupportedMediaType(text)
        }
    }

    public var description: String {
        switch self {
        case .tar: return "tar"
        case .tarGzip: return "tar+gzip"
        case .tarZstd: return "tar+zstd"
        }
    }
}
