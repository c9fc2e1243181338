import CNettle
import FoundationEssentials

/// An OpenSSH signature (`ssh-keygen -Y sign`): the armored `SSHSIG` blob of
/// PROTOCOL.sshsig — the signer's public key, the namespace, the hash
/// algorithm and the signature over "SSHSIG" ‖ namespace ‖ reserved ‖
/// hash algorithm ‖ H(message). Parsing checks the shape only; `verify`
/// decides whether it covers a message.
public struct SSHSignature: Sendable {
    public enum HashAlgorithm: String, Sendable {
        case sha256, sha512
    }

    public let publicKey: SSHPublicKey
    public let namespace: String
    public let hashAlgorithm: HashAlgorithm
    let reserved: [UInt8]
    let signatureAlgorithm: String
    let signatureBytes: [UInt8]

    static let magic = Array("SSHSIG".utf8)
    static let armorBegin = "-----BEGIN SSH SIGNATURE-----"
    static let armorEnd = "-----END SSH SIGNATURE-----"
    /// Far above any real signature (an RSA-8192 one is ~2 KB armored).
    public static let maxFileBytes = 16 << 10

    /// From a `.sig` file's bytes.
    public init(armored bytes: [UInt8]) throws(SignatureRefusal) {
        guard bytes.count <= Self.maxFileBytes else { throw .malformed("the file is \(bytes.count) bytes, over \(Self.maxFileBytes)") }
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(whereSeparator: \.isNewline)
            .map { String($0.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed()) }
            .filter { !$0.isEmpty }
        guard lines.first == Self.armorBegin, lines.last == Self.armorEnd, lines.count >= 3 else {
            throw .malformed("expected \(Self.armorBegin) … \(Self.armorEnd)")
        }
        guard let blob = Data(base64Encoded: lines.dropFirst().dropLast().joined()) else {
            throw .malformed("the body is not base64")
        }
        try self.init(blob: Array(blob))
    }

    init(blob: [UInt8]) throws(SignatureRefusal) {
        var reader = SSHWireReader(blob)
        guard Array(try reader.fixed(Self.magic.count)) == Self.magic else { throw .malformed("no SSHSIG preamble") }
        let version = try reader.uint32()
        guard version == 1 else { throw .malformed("version \(version), expected 1") }
        publicKey = try SSHPublicKey(blob: try reader.string())
        namespace = try reader.name()
        reserved = try reader.string()
        let hash = try reader.name()
        guard let hashAlgorithm = HashAlgorithm(rawValue: hash) else { throw .unsupportedAlgorithm("hash \(hash)") }
        self.hashAlgorithm = hashAlgorithm
        var signature = SSHWireReader(try reader.string())
        guard reader.isAtEnd else { throw .malformed("bytes after the signature") }
        signatureAlgorithm = try signature.name()
        signatureBytes = try signature.string()
        guard signature.isAtEnd else { throw .malformed("bytes after the signature value") }
    }

    /// Whether this signature covers `message` for `namespace`. Refusals say why;
    /// success returns the signing key (who it is, `allowed_signers` decides).
    public func verify(_ message: [UInt8], namespace expected: String) throws(SignatureRefusal) -> SSHPublicKey {
        guard namespace == expected else { throw .wrongNamespace(expected: expected, found: namespace) }
        switch publicKey.algorithm {
        case .ed25519:
            guard signatureAlgorithm == SSHPublicKey.Algorithm.ed25519.rawValue else {
                throw .malformed("an \(publicKey.algorithm.rawValue) key with an \(signatureAlgorithm.prefix(40)) signature")
            }
            guard signatureBytes.count == 64 else { throw .malformed("an ssh-ed25519 signature is 64 bytes") }
            let signed = signedData(digest: Self.digest(message, hashAlgorithm))
            let valid = publicKey.keyBytes.withUnsafeBufferPointer { key in
                signatureBytes.withUnsafeBufferPointer { signature in
                    signed.withUnsafeBufferPointer { data in
                        nettle_ed25519_sha512_verify(key.baseAddress, data.count, data.baseAddress, signature.baseAddress)
                    }
                }
            }
            guard valid == 1 else { throw .badSignature }
        }
        return publicKey
    }

    /// What the key signed: PROTOCOL.sshsig's "SSHSIG" ‖ namespace ‖ reserved ‖ hash ‖ H(message).
    func signedData(digest: [UInt8]) -> [UInt8] {
        var writer = SSHWireWriter()
        writer.raw(Self.magic)
        writer.string(Array(namespace.utf8))
        writer.string(reserved)
        writer.string(Array(hashAlgorithm.rawValue.utf8))
        writer.string(digest)
        return writer.bytes
    }

    static func digest(_ message: [UInt8], _ algorithm: HashAlgorithm) -> [UInt8] {
        switch algorithm {
        case .sha256:
            var context = sha256_ctx()
            nettle_sha256_init(&context)
            message.withUnsafeBufferPointer { nettle_sha256_update(&context, $0.count, $0.baseAddress) }
            var digest = [UInt8](repeating: 0, count: 32)
            nettle_sha256_digest(&context, 32, &digest)
            return digest
        case .sha512:
            var context = sha512_ctx()
            nettle_sha512_init(&context)
            message.withUnsafeBufferPointer { nettle_sha512_update(&context, $0.count, $0.baseAddress) }
            var digest = [UInt8](repeating: 0, count: 64)
            nettle_sha512_digest(&context, 64, &digest)
            return digest
        }
    }
}
