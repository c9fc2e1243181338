import CNettle

/// A content digest, parsed once at the edge: `sha256:` followed by exactly 64
/// lowercase hex digits. Anything else is refused before it can become a file
/// name or a URL path. (Other algorithms are refused by name.)
public struct Digest: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// The 64 lowercase hex digits.
    public let hex: String

    public init(parsing text: String) throws(DigestError) {
        guard let colon = text.firstIndex(of: ":") else { throw .malformed(text) }
        let algorithm = text[..<colon]
        let hex = text[text.index(after: colon)...]
        guard algorithm == "sha256" else { throw .unsupportedAlgorithm(String(algorithm)) }
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw .malformed(text)
        }
        self.hex = String(hex)
    }

    /// The digest of `bytes`.
    public init(of bytes: some Sequence<UInt8>) {
        var hasher = DigestHasher()
        hasher.update(Array(bytes))
        self = hasher.finalize()
    }

    package init(trustedHex: String) {
        hex = trustedHex
    }

    public var description: String { "sha256:\(hex)" }

    /// "sha256:abcdef012345" for tables and logs.
    public var short: String { "sha256:\(hex.prefix(12))" }

    public static func < (a: Digest, b: Digest) -> Bool { a.hex < b.hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            self = try Digest(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

public enum DigestError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsupportedAlgorithm(String)

    public var description: String {
        switch self {
        case .malformed(let text):
            let shown = text.count > 80 ? String(text.prefix(80)) + "…" : text
            return "invalid digest '\(shown)': expected sha256: followed by 64 lowercase hex digits"
        case .unsupportedAlgorithm(let name):
            return "unsupported digest algorithm '\(name)': only sha256 is accepted"
        }
    }
}

/// Hashes a stream as it passes, so content is verified while it is written.
public struct DigestHasher {
    private var context = sha256_ctx()
    public private(set) var byteCount: UInt64 = 0

    public init() {
        nettle_sha256_init(&context)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), !bytes.isEmpty else { return }
        nettle_sha256_update(&context, bytes.count, base)
        byteCount += UInt64(bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The 32 bytes of the digest (SSH fingerprints and signatures want them raw).
    public func finalizeBytes() -> [UInt8] {
        // nettle's digest call resets its context; finalize on a copy so the
        // hasher stays a value that can be finalized more than once.
        var finishing = context
        var bytes = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_SIZE))
        nettle_sha256_digest(&finishing, bytes.count, &bytes)
        return bytes
    }

    public func finalize() -> Digest {
        let hex = finalizeBytes().map { byte in
            let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
        }.joined()
        return Digest(trustedHex: hex)
    }
}
