import CNettle

/// `X-DGrid-Signature: sha256=<hex>`: HMAC-SHA256 of the exact body bytes
/// with the host's webhook secret (nettle's HMAC, the library the content
/// store already links). The body carries the event's id and time, so the
/// signature covers them: a receiver checks the signature over the raw body
/// first, then refuses a time outside its window and an id it has seen (replay).
public enum WebhookSignature {
    public static let header = "X-DGrid-Signature"
    public static let eventHeader = "X-DGrid-Event"
    public static let idHeader = "X-DGrid-Event-Id"
    public static let timestampHeader = "X-DGrid-Timestamp"

    public static func value(body: [UInt8], secret: WebhookSecret) -> String {
        "sha256=" + hmacSHA256(key: secret.bytes, message: body).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var context = hmac_sha256_ctx()
        key.withUnsafeBufferPointer { nettle_hmac_sha256_set_key(&context, $0.count, $0.baseAddress) }
        message.withUnsafeBufferPointer { nettle_hmac_sha256_update(&context, $0.count, $0.baseAddress) }
        var digest = [UInt8](repeating: 0, count: 32)
        nettle_hmac_sha256_digest(&context, digest.count, &digest)
        return digest
    }
}
