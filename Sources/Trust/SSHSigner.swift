import CNettle
import FoundationEssentials
import SandboxSupport

/// Signs in-process with an unencrypted OpenSSH Ed25519 private key
/// (`ssh-keygen -t ed25519 -N ""`, the `openssh-key-v1` format of
/// PROTOCOL.key), making the same armored `SSHSIG` blob `ssh-keygen -Y sign`
/// makes (PROTOCOL.sshsig, hash sha512) — so `ssh-keygen -Y verify` checks what
/// a worker signs. In-process because a worker signs every claim, renewal,
/// heartbeat and result: a spawn of ssh-keygen each time would cost more than
/// the push it signs. Only Ed25519, only unencrypted: a node key is the
/// worker's own, made for it by `dgrid node init`.
public struct SSHSigner: Sendable {
    public let publicKey: SSHPublicKey
    private let seed: [UInt8]
    private let rawPublic: [UInt8]

    /// Far above a real Ed25519 key file (~400 bytes).
    public static let maxKeyFileBytes = 16 << 10

    static let keyMagic = Array("openssh-key-v1\0".utf8)
    static let keyBegin = "-----BEGIN OPENSSH PRIVATE KEY-----"
    static let keyEnd = "-----END OPENSSH PRIVATE KEY-----"

    /// From the private key file's bytes; refusals say what is wrong with it.
    public init(privateKeyFile bytes: [UInt8]) throws(SSHKeyFileRefusal) {
        do throws(SignatureRefusal) {
            self = try Self(parsing: bytes)
        } catch {
            switch error {
            case .malformed(let why), .weakKey(let why): throw SSHKeyFileRefusal(why)
            case .unsupportedAlgorithm(let what): throw SSHKeyFileRefusal("unsupported: \(what)")
            default: throw SSHKeyFileRefusal("\(error)")
            }
        }
    }

    private init(parsing bytes: [UInt8]) throws(SignatureRefusal) {
        guard bytes.count <= Self.maxKeyFileBytes else { throw .malformed("the key file is \(bytes.count) bytes, over \(Self.maxKeyFileBytes)") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed("the key file is not text") }
        let lines: [String] = text.split(whereSeparator: \.isNewline).map { (line: Substring) -> String in
            String(line.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
        }.filter { !$0.isEmpty }
        guard lines.count >= 3, lines.first == Self.keyBegin, lines.last == Self.keyEnd else {
            throw .malformed("expected \(Self.keyBegin) … \(Self.keyEnd) (an OpenSSH private key)")
        }
        guard let blob = Data(base64Encoded: lines.dropFirst().dropLast().joined()) else { throw .malformed("the key body is not base64") }
        var reader = SSHWireReader(Array(blob))
        guard Array(try reader.fixed(Self.keyMagic.count)) == Self.keyMagic else { throw .malformed("not an openssh-key-v1 key") }
        let cipher = try reader.name(), kdf = try reader.name()
        _ = try reader.string()  // KDF options
        guard cipher == "none", kdf == "none" else {
            throw .unsupportedAlgorithm("an encrypted key (\(cipher)); a node key has no passphrase")
        }
        guard try reader.uint32() == 1 else { throw .malformed("more than one key in the file") }
        let publicBlob = try reader.string()
        var secret = SSHWireReader(try reader.string())
        guard reader.isAtEnd else { throw .malformed("bytes after the private section") }
        guard try secret.uint32() == (try secret.uint32()) else { throw .malformed("the check numbers differ (a damaged or encrypted key)") }
        let algorithm = try secret.name()
        guard algorithm == SSHPublicKey.Algorithm.ed25519.rawValue else { throw .malformed("a \(UntrustedText.shown(algorithm, limit: 40)) key: node keys are Ed25519 (ssh-keygen -t ed25519)") }
        let rawPublic = try secret.string()
        let both = try secret.string()  // seed ‖ public
        guard rawPublic.count == 32, both.count == 64, Array(both[32...]) == rawPublic else { throw .malformed("an Ed25519 key of the wrong shape") }
        let key = try SSHPublicKey(blob: publicBlob)
        guard key.algorithm == SSHPublicKey.Algorithm.ed25519, key.certificate == nil, Array(publicBlob.suffix(32)) == rawPublic else {
            throw .malformed("the public key does not match the private one")
        }
        let seed = Array(both[..<32])
        // The seed must make the public key it came with: a file stitched from two keys signs as neither.
        var derived = [UInt8](repeating: 0, count: 32)
        nettle_ed25519_sha512_public_key(&derived, seed)
        guard derived == rawPublic else { throw .malformed("the private key does not make its public key") }
        publicKey = key
        self.seed = seed
        self.rawPublic = rawPublic
    }

    /// A new Ed25519 key: the private key file (`openssh-key-v1`, unencrypted, as
    /// `ssh-keygen -t ed25519 -N ""` writes it, so OpenSSH's tools read it) and the
    /// `.pub` line. The seed comes from the system's CSPRNG.
    public static func generate(comment: String) -> (privateKeyFile: [UInt8], publicLine: String) {
        var generator = SystemRandomNumberGenerator()  // getrandom(2) on Linux
        let seed = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        var rawPublic = [UInt8](repeating: 0, count: 32)
        nettle_ed25519_sha512_public_key(&rawPublic, seed)
        let algorithm = Array(SSHPublicKey.Algorithm.ed25519.rawValue.utf8)
        var publicBlob = SSHWireWriter()
        publicBlob.string(algorithm)
        publicBlob.string(rawPublic)
        let check = UInt32.random(in: .min ... .max, using: &generator)
        var secret = SSHWireWriter()
        secret.uint32(check)
        secret.uint32(check)
        secret.string(algorithm)
        secret.string(rawPublic)
        secret.string(seed + rawPublic)
        secret.string(Array(comment.utf8))
        var pad: UInt8 = 1
        while secret.bytes.count % 8 != 0 {  // 1, 2, 3, … to the cipher's block size (8 for "none")
            secret.raw([pad])
            pad += 1
        }
        var file = SSHWireWriter()
        file.raw(keyMagic)
        file.string(Array("none".utf8))
        file.string(Array("none".utf8))
        file.string([])
        file.uint32(1)
        file.string(publicBlob.bytes)
        file.string(secret.bytes)
        let armored = armor(file.bytes, begin: keyBegin, end: keyEnd)
        let publicLine = "ssh-ed25519 " + Data(publicBlob.bytes).base64EncodedString() + (comment.isEmpty ? "" : " " + comment)
        return (Array(armored.utf8), publicLine)
    }

    /// The armored signature of `message` for `namespace`, as `ssh-keygen -Y sign -n NAMESPACE` writes it.
    public func sign(_ message: [UInt8], namespace: String) -> [UInt8] {
        let toSign = SSHSignature.signedData(namespace: namespace, reserved: [], hash: .sha512, digest: SignatureDigest.sha512(message))
        var value = [UInt8](repeating: 0, count: 64)
        nettle_ed25519_sha512_sign(rawPublic, seed, toSign.count, toSign, &value)
        var signature = SSHWireWriter()
        signature.string(Array(SSHPublicKey.Algorithm.ed25519.rawValue.utf8))
        signature.string(value)
        var blob = SSHWireWriter()
        blob.raw(SSHSignature.magic)
        blob.uint32(1)
        blob.string(publicKey.blob)
        blob.string(Array(namespace.utf8))
        blob.string([])
        blob.string(Array(SSHSignature.HashAlgorithm.sha512.rawValue.utf8))
        blob.string(signature.bytes)
        return Array(Self.armor(blob.bytes, begin: SSHSignature.armorBegin, end: SSHSignature.armorEnd).utf8)
    }

    /// `begin`, the base64 of `bytes` in lines of 70 columns (as OpenSSH wraps keys and signatures), `end`.
    static func armor(_ bytes: [UInt8], begin: String, end: String) -> String {
        var armored = begin + "\n"
        var line = Data(bytes).base64EncodedString()[...]
        while !line.isEmpty {
            armored += line.prefix(70) + "\n"
            line = line.dropFirst(70)
        }
        return armored + end + "\n"
    }
}

/// Why a private key file cannot sign: what is wrong with it, for the message that names the file.
public struct SSHKeyFileRefusal: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ why: String) { description = why }
}
