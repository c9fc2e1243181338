import SandboxSupport
import CNettle
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

    /// RSA moduli below this are refused as keys (OpenSSH's floor is 1024).
    static let minimumRSABits = 2048

    /// From the wire blob, as it sits inside an `SSHSIG` signature.
    public init(blob: [UInt8]) throws(SignatureRefusal) {
        var reader = SSHWireReader(blob)
        let name = try reader.name()
        guard let algorithm = Algorithm(rawValue: name) else { throw .unsupportedAlgorithm(name) }
        switch algorithm {
        case .ed25519:
            let key = try reader.string()
            guard key.count == 32 else { throw .malformed("an ssh-ed25519 key is 32 bytes") }
            material = .ed25519(key: key)
        case .ecdsaP256:
            guard try reader.name() == "nistp256" else { throw .malformed("an ecdsa-sha2-nistp256 key names another curve") }
            // Uncompressed point: 0x04 ‖ X ‖ Y (SEC 1 §2.3.3).
            let point = try reader.string()
            guard point.count == 65, point[0] == 4 else { throw .malformed("an ecdsa-sha2-nistp256 key is an uncompressed 65-byte point") }
            material = .ecdsaP256(x: Array(point[1...32]), y: Array(point[33...64]))
        case .rsa:
            let exponent = try reader.mpint()
            let modulus = try reader.mpint()
            let bits = SSHWireReader.bitLength(modulus)
            guard bits >= Self.minimumRSABits else { throw .weakKey("an RSA modulus of \(bits) bits (at least \(Self.minimumRSABits))") }
            material = .rsa(exponent: exponent, modulus: modulus)
        }
        guard reader.isAtEnd else { throw .malformed("bytes after the \(name) key") }
        self.algorithm = algorithm
        self.blob = blob
    }

    /// From an `authorized_keys`-style line: `ALGORITHM BASE64 [COMMENT]`.
    public init(line: String) throws(SignatureRefusal) {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count >= 2 else { throw .malformed("expected \"ALGORITHM BASE64 [COMMENT]\"") }
        try self.init(algorithmName: String(words[0]), base64: String(words[1]))
    }

    /// The two words of a key in OpenSSH's text formats; the name must match the blob.
    init(algorithmName: String, base64: String) throws(SignatureRefusal) {
        guard Algorithm(rawValue: algorithmName) != nil else { throw .unsupportedAlgorithm(algorithmName) }
        guard let blob = Data(base64Encoded: base64) else { throw .malformed("the key is not base64") }
        try self.init(blob: Array(blob))
        guard algorithm.rawValue == algorithmName else {
            throw .malformed("the key is labelled \(UntrustedText.shown(algorithmName, limit: 40)) but holds \(algorithm.rawValue)")
        }
    }

    /// OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's SHA-256.
    public var fingerprint: String {
        "SHA256:" + String(Data(SignatureDigest.sha256(blob)).base64EncodedString().filter { $0 != "=" })
    }
}
