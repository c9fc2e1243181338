import CNettle
import SandboxSupport

/// The digests SSH signatures use: SHA-256 through the content store's
/// hasher, SHA-512 through nettle (which the store has no use for).
enum SignatureDigest {
    static func sha256(_ message: [UInt8]) -> [UInt8] {
        var hasher = DigestHasher()
        hasher.update(message)
        return hasher.finalizeBytes()
    }

    static func sha512(_ message: [UInt8]) -> [UInt8] {
        var context = sha512_ctx()
        nettle_sha512_init(&context)
        message.withUnsafeBufferPointer { nettle_sha512_update(&context, $0.count, $0.baseAddress) }
        var digest = [UInt8](repeating: 0, count: Int(SHA512_DIGEST_SIZE))
        nettle_sha512_digest(&context, digest.count, &digest)
        return digest
    }
}
