import SandboxSupport
/// What an unpack did beyond copying entries verbatim, so the caller can log
/// it and an admin can see what the image lost. Paths are relative to the
/// layer root, shown as `UntrustedText.shown(bytes:)` renders them ("." is the root).
public struct UnpackReport: Sendable, Equatable, Codable {
    /// Tar entries read, including whiteouts and skipped devices.
    public var entries: Int = 0
    /// Bytes of the uncompressed tar stream.
    public var uncompressedBytes: UInt64 = 0
    /// The sha256 of the uncompressed stream; equal to the expected diff_id.
    public var diffID: Digest
    /// Character and block devices, which are never created.
    public var skippedDevices: [String] = []
    /// Non-directories whose setuid/setgid bits were dropped.
    public var droppedSetuid: [String] = []
    /// Paths hidden from lower layers (`.wh.NAME`), created as overlayfs
    /// whiteouts (0/0 character devices). Kept so a non-overlay fallback could
    /// apply them by deleting from a copy.
    public var whiteouts: [String] = []
    /// Directories marked opaque (`.wh..wh..opq`), carrying
    /// `user.overlay.opaque=y` (and `trusted.` as root); lower layers' contents are hidden below them.
    public var opaqueDirectories: [String] = []
    /// Xattrs not restored: outside the allowlist, always-refused namespaces,
    /// or on a symlink or special file (the kernel refuses user.* there).
    public var skippedXattrs: Int = 0

    init(diffID: Digest) {
        self.diffID = diffID
    }
}
