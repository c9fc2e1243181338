import CNettle
import CSignatureMath
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

    /// Every signature in a `.sig` file: one armored block per signer,
    /// concatenated (what `dgrid sign` appends). At least one; at most 16.
    public static func all(inArmored bytes: [UInt8]) throws(SignatureRefusal) -> [SSHSignature] {
        guard bytes.count <= maxFileBytes else { throw .malformed("the file is \(bytes.count) bytes, over \(maxFileBytes)") }
        let text = String(decoding: bytes, as: UTF8.self)
        var blocks: [String] = [], current: [String]?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = String(raw).filter { $0 != " " && $0 != "\t" && $0 != "\r" }
            if line.isEmpty { continue }
            if line == armorBegin.filter({ $0 != " " }) {
                guard current == nil else { throw .malformed("a BEGIN inside a signature") }
                current = [armorBegin]
            } else if line == armorEnd.filter({ $0 != " " }) {
                guard var block = current else { throw .malformed("an END with no BEGIN") }
                block.append(armorEnd)
                blocks.append(block.joined(separator: "\n"))
                current = nil
            } else {
                guard current != nil else { throw .malformed("text outside \(armorBegin) … \(armorEnd)") }
                current!.append(line)
            }
        }
        guard current == nil else { throw .malformed("a signature with no END line") }
        guard !blocks.isEmpty else { throw .malformed("expected \(armorBegin) … \(armorEnd)") }
        guard blocks.count <= 16 else { throw .malformed("\(blocks.count) signatures, at most 16") }
        var signatures: [SSHSignature] = []
        for block in blocks { signatures.append(try SSHSignature(armored: Array(block.utf8))) }
        return signatures
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
        let signed = signedData(digest: hashAlgorithm == .sha512 ? SignatureDigest.sha512(message) : SignatureDigest.sha256(message))
        let valid: Bool
        switch publicKey.material {
        case .ed25519(let key):
            try expectSignatureAlgorithm(["ssh-ed25519"])
            guard signatureBytes.count == 64 else { throw .malformed("an ssh-ed25519 signature is 64 bytes") }
            valid = key.withUnsafeBufferPointer { key in
                signatureBytes.withUnsafeBufferPointer { signature in
                    signed.withUnsafeBufferPointer { data in
                        nettle_ed25519_sha512_verify(key.baseAddress, data.count, data.baseAddress, signature.baseAddress)
                    }
                }
            } == 1
        case .ecdsaP256(let x, let y):
            try expectSignatureAlgorithm(["ecdsa-sha2-nistp256"])
            // RFC 5656 §3.1.2: the signature blob is mpint r ‖ mpint s; the digest SHA-256.
            var reader = SSHWireReader(signatureBytes)
            let r = try reader.mpint(), s = try reader.mpint()
            guard reader.isAtEnd, r.count <= 32, s.count <= 32 else { throw .malformed("an ecdsa-sha2-nistp256 signature is two 256-bit numbers") }
            let digest = SignatureDigest.sha256(signed)
            valid = try Self.checked(dgrid_ecdsa_p256_verify(x, x.count, y, y.count, digest, digest.count, r, r.count, s, s.count))
        case .rsa(let exponent, let modulus):
            // SHA-1 ("ssh-rsa" signatures) is refused, as OpenSSH refuses it for SSHSIG.
            try expectSignatureAlgorithm(["rsa-sha2-512", "rsa-sha2-256"])
            let digest = signatureAlgorithm == "rsa-sha2-512" ? SignatureDigest.sha512(signed) : SignatureDigest.sha256(signed)
            valid = try Self.checked(dgrid_rsa_pkcs1_verify(modulus, modulus.count, exponent, exponent.count, digest, digest.count,
                                                            signatureBytes, signatureBytes.count, UInt32(SSHPublicKey.minimumRSABits)))
        }
        guard valid else { throw .badSignature }
        return publicKey
    }

    private func expectSignatureAlgorithm(_ allowed: [String]) throws(SignatureRefusal) {
        guard allowed.contains(signatureAlgorithm) else {
            throw allowed.count > 1 && signatureAlgorithm == "ssh-rsa"
                ? .unsupportedAlgorithm("ssh-rsa signatures (SHA-1)")
                : .malformed("an \(publicKey.algorithm.rawValue) key with an \(UntrustedName.shown(signatureAlgorithm)) signature")
        }
    }

    /// The C helpers' 1 / 0 / -1 (key unusable) as a Bool or a refusal.
    private static func checked(_ result: Int32) throws(SignatureRefusal) -> Bool {
        guard result >= 0 else { throw .weakKey("a key the curve or RSA rules reject") }
        return result == 1
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
}

/// The most a `.sig` file may hold, for readers outside this module.
public enum SSHSignatureLimit {
    public static let bytes = SSHSignature.maxFileBytes
}
