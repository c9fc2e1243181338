import SandboxSupport
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
        let signatures = try Self.all(inArmored: bytes)
        guard signatures.count == 1 else { throw .malformed("\(signatures.count) signatures where one was expected") }
        self = signatures[0]
    }

    /// Every signature in a `.sig` file: one armored block per signer,
    /// concatenated (what `dgrid sign` appends). At least one; at most 16.
    /// Read as bytes, line by line (this runs for every task a worker takes).
    public static func all(inArmored bytes: [UInt8]) throws(SignatureRefusal) -> [SSHSignature] {
        guard bytes.count <= maxFileBytes else { throw .malformed("the file is \(bytes.count) bytes, over \(maxFileBytes)") }
        let begin = Array(armorBegin.utf8), end = Array(armorEnd.utf8)
        var signatures: [SSHSignature] = []
        var body: [UInt8]?
        var start = 0
        while start < bytes.count {
            var stop = start
            while stop < bytes.count, bytes[stop] != UInt8(ascii: "\n") { stop += 1 }
            // The line without surrounding spaces, tabs and a CR.
            var lo = start, hi = stop
            while lo < hi, bytes[lo] == 0x20 || bytes[lo] == 0x09 || bytes[lo] == 0x0d { lo += 1 }
            while hi > lo, bytes[hi - 1] == 0x20 || bytes[hi - 1] == 0x09 || bytes[hi - 1] == 0x0d { hi -= 1 }
            let line = bytes[lo..<hi]
            start = stop + 1
            if line.isEmpty { continue }
            if line.elementsEqual(begin) {
                guard body == nil else { throw .malformed("a BEGIN inside a signature") }
                body = []
            } else if line.elementsEqual(end) {
                guard let encoded = body else { throw .malformed("an END with no BEGIN") }
                guard !encoded.isEmpty else { throw .malformed("expected \(armorBegin) … \(armorEnd)") }
                guard let blob = Data(base64Encoded: Data(encoded)) else { throw .malformed("the body is not base64") }
                guard signatures.count < 16 else { throw .malformed("more than 16 signatures") }
                signatures.append(try SSHSignature(blob: Array(blob)))
                body = nil
            } else {
                guard body != nil else { throw .malformed("text outside \(armorBegin) … \(armorEnd)") }
                body!.append(contentsOf: line)
            }
        }
        guard body == nil else { throw .malformed("a signature with no END line") }
        guard !signatures.isEmpty else { throw .malformed("expected \(armorBegin) … \(armorEnd)") }
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
        guard try publicKey.verifies(signed, signatureAlgorithm: signatureAlgorithm, signature: signatureBytes) else { throw .badSignature }
        return publicKey
    }

    /// What the key signed: PROTOCOL.sshsig's "SSHSIG" ‖ namespace ‖ reserved ‖ hash ‖ H(message).
    func signedData(digest: [UInt8]) -> [UInt8] {
        Self.signedData(namespace: namespace, reserved: reserved, hash: hashAlgorithm, digest: digest)
    }

    static func signedData(namespace: String, reserved: [UInt8], hash: HashAlgorithm, digest: [UInt8]) -> [UInt8] {
        var writer = SSHWireWriter()
        writer.raw(magic)
        writer.string(Array(namespace.utf8))
        writer.string(reserved)
        writer.string(Array(hash.rawValue.utf8))
        writer.string(digest)
        return writer.bytes
    }
}

/// The most a `.sig` file may hold, for readers outside this module.
public enum SSHSignatureLimit {
    public static let bytes = SSHSignature.maxFileBytes
}
