/// Reads the SSH wire encoding (RFC 4251 §5): big-endian uint32 and
/// length-prefixed strings. Every read is bounds-checked against what is left:
/// a signature file is written by whoever can push to the grid.
struct SSHWireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    /// Bytes read so far: where the next field starts.
    var position: Int { offset }

    mutating func fixed(_ count: Int) throws(SignatureRefusal) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count - offset >= count else { throw .malformed("truncated (wanted \(count) more bytes)") }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    mutating func uint32() throws(SignatureRefusal) -> UInt32 {
        try fixed(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func uint64() throws(SignatureRefusal) -> UInt64 {
        try fixed(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func string() throws(SignatureRefusal) -> [UInt8] {
        let length = try uint32()
        // No field dgrid reads is near this; a huge length is garbage, not a read.
        guard length <= 1 << 20 else { throw .malformed("a field claims \(length) bytes") }
        return Array(try fixed(Int(length)))
    }

    /// An mpint (RFC 4251 §5) that must be non-negative, as unsigned big-endian
    /// bytes without leading zeros.
    mutating func mpint() throws(SignatureRefusal) -> [UInt8] {
        let raw = try string()
        if let first = raw.first, first & 0x80 != 0 { throw .malformed("a negative number where a key or signature value belongs") }
        return Array(raw.drop(while: { $0 == 0 }))
    }

    /// Bits in an unsigned big-endian number without leading zeros.
    static func bitLength(_ bytes: [UInt8]) -> Int {
        guard let first = bytes.first else { return 0 }
        return (bytes.count - 1) * 8 + (8 - first.leadingZeroBitCount)
    }

    /// A string that must be printable ASCII (algorithm names, namespaces).
    mutating func name() throws(SignatureRefusal) -> String {
        let raw = try string()
        guard raw.allSatisfy({ $0 >= 0x21 && $0 < 0x7f }) else { throw .malformed("a name field holds non-printable bytes") }
        return String(decoding: raw, as: UTF8.self)
    }
}

/// Writes the SSH wire encoding: what `SSHSignature` hashes and signs over.
struct SSHWireWriter {
    private(set) var bytes: [UInt8] = []

    mutating func raw<S: Sequence>(_ data: S) where S.Element == UInt8 { bytes.append(contentsOf: data) }

    mutating func uint32(_ value: UInt32) {
        bytes.append(contentsOf: [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)])
    }

    mutating func string<S: Collection>(_ data: S) where S.Element == UInt8 {
        uint32(UInt32(data.count))
        bytes.append(contentsOf: data)
    }
}
