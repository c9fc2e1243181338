import SandboxSupport

/// An OpenSSH certificate (PROTOCOL.certkeys): a key, the principals it
/// speaks for, a validity window, options, and a CA's signature over all of it.
/// Parsed from the blob inside an `SSHSIG` (`ssh-keygen -Y sign -f KEY-cert.pub`);
/// whether the CA is trusted, and for whom, is `AllowedSigners`' question.
public struct SSHCertificate: Hashable, Sendable {
    static let suffix = "-cert-v01@openssh.com"
    /// PROTOCOL.certkeys: 1 for a user certificate, 2 for a host's.
    static let userType: UInt32 = 1

    public let serial: UInt64
    let type: UInt32
    public let keyID: String
    public let principals: [String]
    /// Seconds since the epoch: valid from `validAfter` up to, not including, `validBefore`.
    public let validAfter: UInt64, validBefore: UInt64
    /// Names of the critical options; dgrid accepts a certificate only without any.
    public let criticalOptions: [String]
    let caKeyBlob: [UInt8]
    let signatureAlgorithm: String
    let signatureBytes: [UInt8]
    /// Everything the CA signed: the blob up to its signature field.
    let signedBytes: [UInt8]

    var isUserCertificate: Bool { type == Self.userType }

    /// The fingerprint of the CA key that signed this certificate; nil when it cannot be read.
    public var authorityFingerprint: String? { (try? SSHPublicKey(blob: caKeyBlob))?.fingerprint }

    /// The fields after the certified key, read to the end of `blob`.
    init(reading reader: inout SSHWireReader, blob: [UInt8]) throws(SignatureRefusal) {
        serial = try reader.uint64()
        type = try reader.uint32()
        keyID = String(decoding: try reader.string(), as: UTF8.self)
        var names = SSHWireReader(try reader.string())
        var principals: [String] = []
        while !names.isAtEnd {
            guard principals.count < 256 else { throw .malformed("a certificate naming more than 256 principals") }
            principals.append(String(decoding: try names.string(), as: UTF8.self))
        }
        self.principals = principals
        validAfter = try reader.uint64()
        validBefore = try reader.uint64()
        var options = SSHWireReader(try reader.string())
        var critical: [String] = []
        while !options.isAtEnd {
            critical.append(try options.name())
            _ = try options.string()
        }
        criticalOptions = critical
        _ = try reader.string()  // extensions: permissions for logins, nothing a signature uses
        _ = try reader.string()  // reserved
        caKeyBlob = try reader.string()
        signedBytes = Array(blob[..<reader.position])
        var signature = SSHWireReader(try reader.string())
        guard reader.isAtEnd else { throw .malformed("bytes after the certificate's signature") }
        signatureAlgorithm = try signature.name()
        signatureBytes = try signature.string()
        guard signature.isAtEnd else { throw .malformed("bytes after the certificate's signature value") }
    }

    /// The CA's key, which must be a plain key (OpenSSH refuses a certificate signed by a certificate).
    public func caKey() throws(SignatureRefusal) -> SSHPublicKey {
        let key = try SSHPublicKey(blob: caKeyBlob)
        guard key.certificate == nil else { throw .malformed("a certificate signed by another certificate") }
        return key
    }

    /// Whether this certificate, signed by `ca`, vouches for one of
    /// `principalPatterns` at `time`: the first of its principals the patterns
    /// match, or why not (a user certificate, in its window, without critical
    /// options, as `ssh-keygen -Y verify` requires).
    func check(ca: SSHPublicKey, principalPatterns: String, at time: Int64) -> Result<String, CertificateRefusal> {
        let signed: Bool
        do {
            signed = try ca.verifies(signedBytes, signatureAlgorithm: signatureAlgorithm, signature: signatureBytes)
        } catch {
            return .failure(.badSignature("\(error)"))
        }
        guard signed else { return .failure(.badSignature("the CA's signature does not cover the certificate")) }
        guard isUserCertificate else { return .failure(.notUser) }
        if time < 0 || UInt64(time) < validAfter { return .failure(.notYetValid(validAfter)) }
        if UInt64(time) >= validBefore { return .failure(.expired(validBefore)) }
        if let option = criticalOptions.first { return .failure(.criticalOption(option)) }
        guard let principal = principals.first(where: { SSHPattern.matchesList(principalPatterns, $0) }) else {
            return .failure(.noPrincipal(principals))
        }
        return .success(principal)
    }
}

/// Why a certificate signed by a trusted CA does not vouch for its signer.
public enum CertificateRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    case badSignature(String)
    case notUser
    case notYetValid(UInt64)
    case expired(UInt64)
    case criticalOption(String)
    case noPrincipal([String])

    public var description: String {
        switch self {
        case .badSignature(let why): "its CA signature does not hold (\(why))"
        case .notUser: "it is a host certificate, not a user certificate"
        case .notYetValid(let after): "it is valid only from \(TrustTime.shown(Int64(clamping: after)))"
        case .expired(let before): "it expired at \(TrustTime.shown(Int64(clamping: before)))"
        case .criticalOption(let name):
            "it carries the critical option \(UntrustedText.quoted(name, limit: 40)), which dgrid cannot enforce"
        case .noPrincipal(let names):
            "none of its principals (\(names.prefix(8).map { UntrustedText.quoted($0, limit: 64) }.joined(separator: ", "))) is one the CA's allowed_signers line names"
        }
    }
}
