import SandboxSupport

/// Why a signature is not accepted. Each says what was wrong; what a case
/// holds is raw, and shown through `UntrustedText` (short, escaped).
public enum SignatureRefusal: Error, Equatable, CustomStringConvertible, Sendable {
    /// Not an SSH signature at all, or one whose fields do not parse.
    case malformed(String)
    /// A key or signature algorithm dgrid does not verify.
    case unsupportedAlgorithm(String)
    /// A key too weak to trust (a short RSA modulus).
    case weakKey(String)
    /// Signed for another use (`ssh-keygen -Y sign -n NAMESPACE`).
    case wrongNamespace(expected: String, found: String)
    /// The signature does not cover these bytes with this key.
    case badSignature

    public var description: String {
        switch self {
        case .malformed(let why): "not a valid SSH signature: \(why)"
        case .unsupportedAlgorithm(let name):
            "unsupported algorithm \(UntrustedText.shown(name, limit: 40)) (dgrid verifies ssh-ed25519, ecdsa-sha2-nistp256 and ssh-rsa keys with rsa-sha2-256/512)"
        case .weakKey(let what): "refused \(what)"
        case .wrongNamespace(let expected, let found):
            "signed for namespace \(UntrustedText.quoted(found, limit: 40)), not \"\(expected)\" (sign with ssh-keygen -Y sign -n \(expected))"
        case .badSignature: "the signature does not match the file's bytes (changed after signing, or another file's signature)"
        }
    }
}
