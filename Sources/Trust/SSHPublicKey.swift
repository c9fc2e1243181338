import CNettle
import FoundationEssentials

/// A public key as OpenSSH writes it: the wire blob (`string algorithm`, then
/// the key's fields). Ed25519 is the key dgrid verifies today.
public struct SSHPublicKey: Equatable, Sendable {
    public enum Algorithm: String, Sendable {
        case ed25519 = "ssh-ed25519"
    }

    public let algorithm: Algorithm
    /// The key's own bytes (Ed25519: 32).
    let keyBytes: [UInt8]
    /// The whole wire blob: what fingerprints and `allowed_signers` compare.
    public let blob: [UInt8]

    /// From the wire blob, as it sits inside an `SSHSIG` signature.
    public init(blob: [UInt8]) throws(SignatureRefusal) {
        var reader = SSHWireReader(blob)
        let name = try reader.name()
        guard let algorithm = Algorithm(rawValue: name) else { throw .unsupportedAlgorithm(name) }
        let key = try reader.string()
        guard key.count == 32, reader.isAtEnd else { throw .malformed("an ssh-ed25519 key is 32 bytes") }
        self.algorithm = algorithm
        self.keyBytes = key
        self.blob = blob
    }

    /// From an `authorized_keys`-style line: `ssh-ed25519 AAAA… [comment]`.
    public init(line: String) throws(SignatureRefusal) {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count >= 2, let blob = Data(base64Encoded: String(words[1])) else {
            throw .malformed("expected \"ALGORITHM BASE64 [COMMENT]\"")
        }
        try self.init(blob: Array(blob))
        guard algorithm.rawValue == words[0] else { throw .malformed("the key line names \(words[0].prefix(40)) but holds \(algorithm.rawValue)") }
    }

    /// OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's SHA-256.
    public var fingerprint: String {
        var context = sha256_ctx()
        nettle_sha256_init(&context)
        blob.withUnsafeBufferPointer { nettle_sha256_update(&context, $0.count, $0.baseAddress) }
        var digest = [UInt8](repeating: 0, count: 32)
        nettle_sha256_digest(&context, 32, &digest)
        return "SHA256:" + String(Data(digest).base64EncodedString().filter { $0 != "=" })
    }
}
