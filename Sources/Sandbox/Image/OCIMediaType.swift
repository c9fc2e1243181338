import SandboxSupport
/// The media types dgrid accepts: OCI image-spec v1 and Docker image manifest
/// v2 schema 2. Docker schema 1 (signed JWS manifests without a config) is
/// refused by name.
public enum OCIMediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayerTar = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    static let dockerSchema1 = [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]

    public static let indexTypes: Set<String> = [ociIndex, dockerManifestList]
    public static let manifestTypes: Set<String> = [ociManifest, dockerManifest]
    public static let configTypes: Set<String> = [ociConfig, dockerConfig]
    /// Layer types as the unpacker knows them; "nondistributable" and "foreign"
    /// only restrict where a blob may be pushed, the content is the same.
    public static let layerTypes: Set<String> = [
        ociLayerTar, ociLayerGzip, ociLayerZstd,
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        dockerLayerGzip,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ]

    /// RFC 6838 shape (`type/subtype`, restricted names), at most 255 bytes:
    /// media types end up in errors, tables and JSON we write.
    static func isWellFormed(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (3...255).contains(bytes.count), let slash = bytes.firstIndex(of: UInt8(ascii: "/")),
              slash > 0, slash < bytes.count - 1 else { return false }
        return bytes.enumerated().allSatisfy { index, byte in
            if index == slash { return true }
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "-"),
                 UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "+"):
                return true
            default:
                return false
            }
        }
    }
}
