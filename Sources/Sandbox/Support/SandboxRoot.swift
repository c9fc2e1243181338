/// One unpacked layer of the image store: the digest of its uncompressed tar
/// (its diff id) and the directory it was unpacked into. The digest travels
/// with the path so an error names the layer the way `dgrid image` does.
public struct StoredLayer: Sendable, Hashable {
    public let diffID: Digest
    public let directory: String

    public init(diffID: Digest, directory: String) {
        self.diffID = diffID
        self.directory = directory
    }
}

/// What a sandbox's `/` is made of, decided once by the caller and never
/// re-derived from a path string (docs/ARCHITECTURE.md §3).
public enum SandboxRoot: Sendable, Hashable {
    /// A root filesystem directory on the host (`--rootfs`), shown read-only.
    case directory(String)
    /// An image's unpacked layers from the store, lowest first: an overlay of
    /// them is mounted inside the sandbox's own mount namespace.
    case layers([StoredLayer])
}
