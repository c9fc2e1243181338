import CGit2

/// A Git object id (SHA-1), parsed once at the edge: 40 hex digits, stored lowercase.
/// Everything the ledger hands out or accepts is one of these, never a bare string.
public struct GitOID: Hashable, Sendable, CustomStringConvertible {
    /// 40 lowercase hex digits.
    public let hex: String

    /// nil unless `hex` is exactly 40 hex digits (either case).
    public init?(hex: String) {
        let bytes = Array(hex.utf8)
        guard bytes.count == 40 else { return nil }
        var lowered: [UInt8] = []
        lowered.reserveCapacity(40)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): lowered.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): lowered.append(byte + 32)
            default: return nil
            }
        }
        self.hex = String(decoding: lowered, as: UTF8.self)
    }

    public var description: String { hex }

    /// The all-zero id: git's "no object", used as the expected old value of a ref
    /// that must not exist yet.
    static let zero = GitOID(raw: git_oid())

    init(raw: git_oid) {
        var oid = raw
        var buffer = [UInt8](repeating: 0, count: 40)
        // git_oid_fmt writes exactly 40 characters, no terminator.
        _ = buffer.withUnsafeMutableBytes { git_oid_fmt($0.baseAddress?.assumingMemoryBound(to: CChar.self), &oid) }
        hex = String(decoding: buffer, as: UTF8.self)
    }

    var raw: git_oid {
        var oid = git_oid()
        // `hex` was validated in init, so this cannot fail.
        _ = git_oid_fromstrn(&oid, hex, 40)
        return oid
    }

    var isZero: Bool { hex.utf8.allSatisfy { $0 == UInt8(ascii: "0") } }
}
