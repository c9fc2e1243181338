import SandboxSupport
/// Bounds checked while a layer streams in, so a hostile layer (a gzip bomb, a
/// million empty entries, absurd names) stops with an error before the disk or
/// memory fills. Defaults fit every real image seen so far with a wide margin.
///
/// libarchive bounds what it buffers itself: a PAX extended header or a GNU
/// long-name/long-link record larger than 1 MiB is refused as corrupt, and
/// more than 32 chained special headers are reported (and refused here).
public struct UnpackLimits: Sendable, Equatable {
    /// Bytes of the uncompressed tar stream (exactly the bytes hashed for the
    /// diff_id). Also caps the summed apparent size of regular files, so a
    /// sparse entry cannot claim more than this either.
    public var maxLayerBytes: UInt64
    /// Tar entries, counting whiteouts, devices and directories.
    public var maxEntries: Int
    /// Bytes in one entry name or hardlink target, as stored in the tar.
    public var maxPathBytes: Int
    /// Components in one entry name or hardlink target.
    public var maxPathDepth: Int
    /// Bytes in one symlink target.
    public var maxSymlinkTargetBytes: Int
    /// Uncompressed bytes allowed per compressed blob byte, or nil for no ratio
    /// check (`maxLayerBytes` always holds). Text compresses about 10:1 and
    /// sparse images far more, so a ratio only suits callers that know their
    /// images.
    public var maxCompressionRatio: UInt64?

    public init(maxLayerBytes: UInt64 = 8 << 30, maxEntries: Int = 500_000, maxPathBytes: Int = 4096,
                maxPathDepth: Int = 256, maxSymlinkTargetBytes: Int = 4096, maxCompressionRatio: UInt64? = nil) {
        self.maxLayerBytes = maxLayerBytes
        self.maxEntries = maxEntries
        self.maxPathBytes = maxPathBytes
        self.maxPathDepth = maxPathDepth
        self.maxSymlinkTargetBytes = maxSymlinkTargetBytes
        self.maxCompressionRatio = maxCompressionRatio
    }
}

/// What an admin may allow beyond the safe default.
public struct UnpackOptions: Sendable, Equatable {
    /// Keep setuid and setgid bits on non-directories. Off: the bits are
    /// dropped and the paths reported. (A setgid directory only makes new
    /// files inherit its group and grants nothing, so it is always kept;
    /// Debian's /var/mail and /var/local rely on it.)
    public var allowSetuid: Bool
    /// Name prefixes of the PAX xattrs to restore, e.g. "user." (a trailing
    /// "*" is accepted and ignored). `security.*` and `trusted.*` are never
    /// restored whatever this says: file capabilities would hand a task
    /// privileges, and `trusted.overlay.*` would let a layer forge overlayfs
    /// whiteouts, opaque directories or redirects.
    public var xattrAllowlist: Set<String>

    public init(allowSetuid: Bool = false, xattrAllowlist: Set<String> = ["user."]) {
        self.allowSetuid = allowSetuid
        self.xattrAllowlist = xattrAllowlist
    }
}
