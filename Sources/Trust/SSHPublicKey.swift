import SandboxSupport
import CNettle
import CSignatureMath
import FoundationEssentials

/// A public key as OpenSSH writes it: the wire blob (`string algorithm`, then
/// the key's fields, RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709). The blob is the
/// key's identity: fingerprints and `allowed_signers` compare blobs.
public struct SSHPublicKey: Equatable, Hashable, Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case ed25519 = "ssh-ed25519"
        case ecdsaP256 = "ecdsa-sha2-nistp256"
        case rsa = "ssh-rsa"
    }

    /// The key's numbers, unsigned big-endian.
    enum Material: Hashable, Sendable {
        case ed25519(key: [UInt8])
        case ecdsaP256(x: [UInt8], y: [UInt8])
        case rsa(exponent: [UInt8], modulus: [UInt8])
    }

    public let algorithm: Algorithm
    let material: Material
    /// The whole wire blob.
    public let blob: [UInt8]
    /// For an OpenSSH certificate (`…-cert-v01@openssh.com`): what it certifies and
    /// who signed it. `algorithm` and `material` are then the certified key's.
    public let certificate: SSHCertificate?
    /// The certified key's own blob for a certificate; `blob` for a plain key.
    let plainBlob: [UInt8]

    /// RSA moduli below this are refused as keys (OpenSSH's floor is 1024).
    static let minimumRSABits = 2048

    /// From the wire blob, as it sits inside an `SSHSIG` signature.
    public init(blob: [UInt8]) throws(SignatureRefusal) {
        var reader = SSHWireReader(blob)
        let name = try reader.name()
        if name.hasSuffix(SSHCertificate.suffix), let algorithm = Algorithm(rawValue: String(name.dropLast(SSHCertificate.suffix.count))) {
            // PROTOCOL.certkeys: the nonce, the key's own fields, then the certificate's.
            _ = try reader.string()
            let keyStart = reader.position
            material = try Self.material(algorithm, &reader)
            var plain = SSHWireWriter()
            plain.string(Array(algorithm.rawValue.utf8))
            plain.raw(blob[keyStart..<reader.position])
            certificate = try SSHCertificate(reading: &reader, blob: blob)
            self.algorithm = algorithm
            self.blob = blob
            plainBlob = plain.bytes
            return
        }
        guard let algorithm = Algorithm(rawValue: name) else { throw .unsupportedAlgorithm(name) }
        material = try Self.material(algorithm, &reader)
        guard reader.isAtEnd else { throw .malformed("bytes after the \(name) key") }
        self.algorithm = algorithm
        self.blob = blob
        certificate = nil
        plainBlob = blob
    }

    private init(algorithm: Algorithm, material: Material, blob: [UInt8]) {
        self.algorithm = algorithm
        self.material = material
        self.blob = blob
        certificate = nil
        plainBlob = blob
    }

    /// The certified key of a certificate; the key itself when plain. `allowed_signers`
    /// lines and `revoked_keys` name plain keys, and OpenSSH matches a
    /// certificate's key against them as it matches the key alone.
    public var plain: SSHPublicKey {
        certificate == nil ? self : SSHPublicKey(algorithm: algorithm, material: material, blob: plainBlob)
    }

    /// The key's fields after its algorithm name.
    private static func material(_ algorithm: Algorithm, _ reader: inout SSHWireReader) throws(SignatureRefusal) -> Material {
        switch algorithm {
        case .ed25519:
            let key = try reader.string()
            guard key.count == 32 else { throw .malformed("an ssh-ed25519 key is 32 bytes") }
            return .ed25519(key: key)
        case .ecdsaP256:
            guard try reader.name() == "nistp256" else { throw .malformed("an ecdsa-sha2-nistp256 key names another curve") }
            // Uncompressed point: 0x04 ‖ X ‖ Y (SEC 1 §2.3.3).
            let point = try reader.string()
            guard point.count == 65, point[0] == 4 else { throw .malformed("an ecdsa-sha2-nistp256 key is an uncompressed 65-byte point") }
            return .ecdsaP256(x: Array(point[1...32]), y: Array(point[33...64]))
        case .rsa:
            let exponent = try reader.mpint()
            let modulus = try reader.mpint()
            let bits = SSHWireReader.bitLength(modulus)
            guard bits >= Self.minimumRSABits else { throw .weakKey("an RSA modulus of \(bits) bits (at least \(Self.minimumRSABits))") }
            return .rsa(exponent: exponent, modulus: modulus)
        }
    }

    /// From an `authorized_keys`-style line: `ALGORITHM BASE64 [COMMENT]`.
    public init(line: String) throws(SignatureRefusal) {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count >= 2 else { throw .malformed("expected \"ALGORITHM BASE64 [COMMENT]\"") }
        try self.init(algorithmName: String(words[0]), base64: String(words[1]))
    }

    /// The two words of a key in OpenSSH's text formats; the name must match the blob.
    init(algorithmName: String, base64: String) throws(SignatureRefusal) {
        // Only plain keys in the host's files: a certificate is vouched for by its CA's line.
        guard Algorithm(rawValue: algorithmName) != nil else { throw .unsupportedAlgorithm(algorithmName) }
        guard let blob = Data(base64Encoded: base64) else { throw .malformed("the key is not base64") }
        try self.init(blob: Array(blob))
        guard algorithm.rawValue == algorithmName else {
            throw .malformed("the key is labelled \(UntrustedText.shown(algorithmName, limit: 40)) but holds \(algorithm.rawValue)")
        }
    }

    /// OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's
    /// SHA-256 (of the certified key's blob for a certificate, as OpenSSH prints it).
    public var fingerprint: String {
        "SHA256:" + String(Data(SignatureDigest.sha256(plainBlob)).base64EncodedString().filter { $0 != "=" })
    }

    /// Whether `signature` (of `signatureAlgorithm`) by this key covers `data`.
    func verifies(_ data: [UInt8], signatureAlgorithm: String, signature: [UInt8]) throws(SignatureRefusal) -> Bool {
        switch material {
        case .ed25519(let key):
            try expect(signatureAlgorithm, in: ["ssh-ed25519"])
            guard signature.count == 64 else { throw .malformed("an ssh-ed25519 signature is 64 bytes") }
            return key.withUnsafeBufferPointer { key in
                signature.withUnsafeBufferPointer { signature in
                    data.withUnsafeBufferPointer { data in
                        nettle_ed25519_sha512_verify(key.baseAddress, data.count, data.baseAddress, signature.baseAddress)
                    }
                }
            } == 1
        case .ecdsaP256(let x, let y):
            try expect(signatureAlgorithm, in: ["ecdsa-sha2-nistp256"])
            // RFC 5656 §3.1.2: the signature blob is mpint r ‖ mpint s; the digest SHA-256.
            var reader = SSHWireReader(signature)
            let r = try reader.mpint(), s = try reader.mpint()
            guard reader.isAtEnd, r.count <= 32, s.count <= 32 else { throw .malformed("an ecdsa-sha2-nistp256 signature is two 256-bit numbers") }
            let digest = SignatureDigest.sha256(data)
            return try Self.checked(dgrid_ecdsa_p256_verify(x, x.count, y, y.count, digest, digest.count, r, r.count, s, s.count))
        case .rsa(let exponent, let modulus):
            // SHA-1 ("ssh-rsa" signatures) is refused, as OpenSSH refuses it for SSHSIG.
            try expect(signatureAlgorithm, in: ["rsa-sha2-512", "rsa-sha2-256"])
            let digest = signatureAlgorithm == "rsa-sha2-512" ? SignatureDigest.sha512(data) : SignatureDigest.sha256(data)
            return try Self.checked(dgrid_rsa_pkcs1_verify(modulus, modulus.count, exponent, exponent.count, digest, digest.count,
                                                           signature, signature.count, UInt32(Self.minimumRSABits)))
        }
    }

    private func expect(_ signatureAlgorithm: String, in allowed: [String]) throws(SignatureRefusal) {
        guard allowed.contains(signatureAlgorithm) else {
            throw allowed.count > 1 && signatureAlgorithm == "ssh-rsa"
                ? .unsupportedAlgorithm("ssh-rsa signatures (SHA-1)")
                : .malformed("an \(algorithm.rawValue) key with an \(UntrustedText.shown(signatureAlgorithm, limit: 40)) signature")
        }
    }

    /// The C helpers' 1 / 0 / -1 (key unusable) as a Bool or a refusal.
    private static func checked(_ result: Int32) throws(SignatureRefusal) -> Bool {
        guard result >= 0 else { throw .weakKey("a key the curve or RSA rules reject") }
        return result == 1
    }
}
