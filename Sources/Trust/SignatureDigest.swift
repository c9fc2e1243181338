import CNettle

/// SHA-256 and SHA-512 through nettle (already linked for the content store).
enum SignatureDigest {
    static func sha256(_ message: [UInt8]) -> [UInt8] {
        var context = sha256_ctx()
        nettle_sha256_init(&context)
        message.withUnsafeBufferPointer { nettle_sha256_update(&context, $0.count, $0.baseAddress) }
        var digest = [UInt8](repeating: 0, count: 32)
        nettle_sha256_digest(&context, 32, &digest)
        return digest
    }

    static func sha512(_ message: [UInt8]) -> [UInt8] {
        var context = sha512_ctx()
        nettle_sha512_init(&context)
        message.withUnsafeBufferPointer { nettle_sha512_update(&context, $0.count, $0.baseAddress) }
        var digest = [UInt8](repeating: 0, count: 64)
        nettle_sha512_digest(&context, 64, &digest)
        return digest
    }
}

/// Names read from a signature or key file, shortened and kept printable for messages.
enum UntrustedName {
    static func shown(_ name: String) -> String {
        let printable = name.unicodeScalars.filter { $0.value >= 0x21 && $0.value < 0x7f }
        return String(String.UnicodeScalarView(printable.prefix(40)))
    }
}
