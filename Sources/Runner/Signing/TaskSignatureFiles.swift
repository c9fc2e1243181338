import Trust

/// The detached signature files beside a task file (docs/ARCHITECTURE.md §9):
/// `<task>.json.sig` (OpenSSH `SSHSIG` blocks, the primary format) and
/// `<task>.json.asc` (OpenPGP, D-GRID's proposal). They travel with the task
/// through every fold, byte for byte.
public struct TaskSignatureFiles: Equatable, Sendable {
    public static let sshSuffix = ".sig"
    public static let openPGPSuffix = ".asc"
    public static let suffixes = [sshSuffix, openPGPSuffix]
    /// The most either file may hold; a bigger one is refused unread.
    public static let maxBytes = SSHSignatureLimit.bytes

    public var ssh: [UInt8]?
    public var openPGP: [UInt8]?

    public init(ssh: [UInt8]? = nil, openPGP: [UInt8]? = nil) {
        self.ssh = ssh
        self.openPGP = openPGP
    }

    public var isEmpty: Bool { ssh == nil && openPGP == nil }

    public subscript(suffix: String) -> [UInt8]? {
        get { suffix == Self.openPGPSuffix ? openPGP : ssh }
        set { if suffix == Self.openPGPSuffix { openPGP = newValue } else { ssh = newValue } }
    }
}
