import SandboxSupport
import Glibc

/// Why a valid signature's key is not trusted on this host.
public enum SignerRefusal: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownKey(fingerprint: String)
    case revoked(fingerprint: String)
    case namespaceNotAllowed(principal: String, namespace: String)
    case notYetValid(principal: String, validAfter: Int64)
    case expired(principal: String, validBefore: Int64)
    /// A certificate whose CA no `cert-authority` line names.
    case unknownCertificateAuthority(fingerprint: String, keyID: String)
    /// A certificate a trusted CA signed that does not vouch for its signer now.
    case certificate(fingerprint: String, keyID: String, CertificateRefusal)

    public var description: String {
        switch self {
        case .unknownKey(let fingerprint): "signed by \(fingerprint), a key not in this host's allowed_signers"
        case .revoked(let fingerprint): "signed by \(fingerprint), a revoked key (revoked_keys)"
        case .namespaceNotAllowed(let principal, let namespace): "\(principal)'s key is not allowed to sign for namespace \(namespace)"
        case .notYetValid(let principal, let after): "\(principal)'s key is valid only from \(TrustTime.shown(after))"
        case .expired(let principal, let before): "\(principal)'s key expired at \(TrustTime.shown(before)) (valid-before)"
        case .unknownCertificateAuthority(let fingerprint, let keyID):
            "signed with a certificate (key id \(UntrustedText.quoted(keyID, limit: 64))) by CA \(fingerprint), which no cert-authority line in this host's allowed_signers names"
        case .certificate(let fingerprint, let keyID, let refusal):
            "the certificate of \(fingerprint) (key id \(UntrustedText.quoted(keyID, limit: 64))) is refused: \(refusal)"
        }
    }
}

enum TrustTime {
    /// UTC, second precision: `2026-01-31T00:00:00Z`.
    static func shown(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
