import CGit2
#if canImport(Glibc)
import Glibc
#endif

/// A Git object id (SHA-1), parsed once at the edge. Everything the ledger hands
/// out or accepts is one of these, never a bare string.
///
/// Held as its 20 bytes, the hex made when asked: listing main's tree makes one
/// id per file (thousands on a long-lived grid), and a 40-character string each
/// cost an allocation and a formatting pass per entry (docs/ARCHITECTURE.md §10).
public struct GitOID: Hashable, Sendable, CustomStringConvertible {
    let raw: git_oid

    /// nil unless `hex` is exactly 40 hex digits (either case).
    public init?(hex: String) {
        let bytes = Array(hex.utf8)
        guard bytes.count == 40, bytes.allSatisfy({ Self.hexDigit($0) != nil }) else { return nil }
        var oid = git_oid()
        withUnsafeMutableBytes(of: &oid) { out in
            for index in 0..<20 { out[index] = Self.hexDigit(bytes[2 * index])! << 4 | Self.hexDigit(bytes[2 * index + 1])! }
        }
        raw = oid
    }

    init(raw: git_oid) {
        self.raw = raw
    }

    /// 40 lowercase hex digits.
    public var hex: String {
        var oid = raw
        return String(unsafeUninitializedCapacity: 40) { buffer in
            // git_oid_fmt writes exactly 40 characters, no terminator.
            _ = buffer.withMemoryRebound(to: CChar.self) { git_oid_fmt($0.baseAddress, &oid) }
            return 40
        }
    }

    public var description: String { hex }

    /// The all-zero id: git's "no object", used as the expected old value of a ref
    /// that must not exist yet.
    static let zero = GitOID(raw: git_oid())

    var isZero: Bool { withUnsafeBytes(of: raw) { $0.allSatisfy { $0 == 0 } } }

    public static func == (lhs: GitOID, rhs: GitOID) -> Bool {
        withUnsafeBytes(of: lhs.raw) { left in withUnsafeBytes(of: rhs.raw) { right in memcmp(left.baseAddress!, right.baseAddress!, 20) == 0 } }
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: raw) { hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: $0.prefix(20))) }
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
