import SandboxSupport
import Glibc

/// The host's `allowed_signers` (ssh-keygen(1), ALLOWED SIGNERS): who may sign,
/// with which key, for which namespaces, during which window. One entry per
/// line: `principals [options] keytype base64-key [comment]`; options are
/// `cert-authority`, `namespaces="…"`, `valid-after=…`, `valid-before=…`
/// (case-insensitive keywords, as OpenSSH reads them).
public struct AllowedSigners: Sendable {
    public struct Entry: Sendable, Equatable {
        /// The principals field as written: a pattern list.
        public let principals: String
        public let key: SSHPublicKey
        public let isCertificateAuthority: Bool
        /// nil: every namespace.
        public let namespaces: String?
        /// Seconds since the epoch; inclusive bounds.
        public let validAfter: Int64?, validBefore: Int64?
        public let line: Int

        /// The name a signature by this entry's key is attributed to: the
        /// first principal that is not a negation, as written.
        /// Whether this entry, as `signer(for:)` returned it, vouches for `name`: OpenSSH's
        /// pattern list (`*`, `?`, `!`) of a plain line, or the certificate principal a CA entry names.
        public func vouches(for name: String) -> Bool {
            isCertificateAuthority ? principals == name : SSHPattern.matchesList(principals, name)
        }

        public var principal: String {
            principals.split(separator: ",").first { !$0.hasPrefix("!") }.map(String.init) ?? principals
        }
    }

    public let entries: [Entry]
    /// Lines skipped because their key type is not one dgrid verifies: kept
    /// out of matching but not an error, so a shared file may list other keys.
    public let skipped: [(line: Int, reason: String)]

    public init(entries: [Entry], skipped: [(line: Int, reason: String)] = []) {
        self.entries = entries
        self.skipped = skipped
    }

    /// Parses the file's text. A line that does not parse is an error naming
    /// it: a typo must not silently drop a signer or widen a grant.
    public static func parse(_ text: String, source: String = "allowed_signers") throws(TrustFileError) -> AllowedSigners {
        var entries: [Entry] = [], skipped: [(Int, String)] = []
        for (lineNumber, line) in TrustFileLines.significant(text) {
            do throws(TrustFileError.Problem) {
                var fields = try Self.fields(String(line))
                guard fields.count >= 3 else { throw .syntax("expected \"principals [options] keytype key\"") }
                let principals = fields.removeFirst()
                var options: String?
                if SSHPublicKey.Algorithm(rawValue: fields[0]) == nil && !Self.looksLikeKeyType(fields[0]) {
                    options = fields.removeFirst()
                }
                guard fields.count >= 2 else { throw .syntax("no key after the options") }
                guard SSHPublicKey.Algorithm(rawValue: fields[0]) != nil || Self.looksLikeKeyType(fields[0]) else {
                    throw .syntax("expected a key type (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa) where \(UntrustedText.shown(fields[0], limit: 40)) is; options are one comma-separated field")
                }
                let parsedOptions = try Self.options(options ?? "")
                let key: SSHPublicKey
                do {
                    key = try SSHPublicKey(algorithmName: fields[0], base64: fields[1])
                } catch {
                    if case .unsupportedAlgorithm = error { skipped.append((lineNumber, "\(error)")); continue }
                    throw .syntax("\(error)")
                }
                guard !principals.isEmpty else { throw .syntax("empty principals") }
                entries.append(Entry(principals: principals, key: key, isCertificateAuthority: parsedOptions.certificateAuthority,
                                     namespaces: parsedOptions.namespaces, validAfter: parsedOptions.validAfter,
                                     validBefore: parsedOptions.validBefore, line: lineNumber))
            } catch {
                throw TrustFileError(file: source, line: lineNumber, problem: error)
            }
        }
        return AllowedSigners(entries: entries, skipped: skipped)
    }

    /// A key type word: OpenSSH's names all contain a '-' and no '='/'"'.
    private static func looksLikeKeyType(_ word: String) -> Bool {
        (word.hasPrefix("ssh-") || word.hasPrefix("ecdsa-") || word.hasPrefix("sk-")) && !word.contains("=") && !word.contains("\"")
    }

    /// Space-separated fields; double quotes keep spaces inside one field.
    static func fields(_ line: String) throws(TrustFileError.Problem) -> [String] {
        var fields: [String] = [], current = "", quoted = false
        for character in line {
            if character == "\"" { quoted.toggle(); current.append(character); continue }
            if !quoted, character == " " || character == "\t" || character == "\r" {
                if !current.isEmpty { fields.append(current); current = "" }
                continue
            }
            current.append(character)
        }
        guard !quoted else { throw .syntax("an unterminated quote") }
        if !current.isEmpty { fields.append(current) }
        return fields.map { $0.hasPrefix("\"") && $0.hasSuffix("\"") && $0.count >= 2 && !$0.dropFirst().dropLast().contains("\"") ? String($0.dropFirst().dropLast()) : $0 }
    }

    struct Options {
        var certificateAuthority = false
        var namespaces: String?
        var validAfter: Int64?, validBefore: Int64?
    }

    static func options(_ text: String) throws(TrustFileError.Problem) -> Options {
        var result = Options()
        guard !text.isEmpty else { return result }
        // Commas separate options except inside double quotes.
        var parts: [String] = [], current = "", quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if character == ",", !quoted { parts.append(current); current = ""; continue }
            current.append(character)
        }
        parts.append(current)
        for part in parts {
            let (name, value) = try Self.split(part)
            switch name.lowercased() {
            case "cert-authority":
                guard value == nil else { throw .syntax("cert-authority takes no value") }
                result.certificateAuthority = true
            case "namespaces":
                guard let value, !value.isEmpty else { throw .syntax("namespaces needs a value") }
                result.namespaces = value
            case "valid-after":
                guard let value, let time = Self.timestamp(value) else { throw .syntax("valid-after wants YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]") }
                result.validAfter = time
            case "valid-before":
                guard let value, let time = Self.timestamp(value) else { throw .syntax("valid-before wants YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]") }
                result.validBefore = time
            default:
                throw .syntax("unknown option \(UntrustedText.shown(name, limit: 40))")
            }
        }
        return result
    }

    /// `name` or `name="value"`: OpenSSH requires the quotes, and a file it
    /// would refuse is refused here too.
    private static func split(_ option: String) throws(TrustFileError.Problem) -> (String, String?) {
        guard let equals = option.firstIndex(of: "=") else { return (option, nil) }
        let name = String(option[..<equals])
        let value = option[option.index(after: equals)...]
        guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") else {
            throw .syntax("option values go in double quotes, as OpenSSH requires: \(UntrustedText.shown(name, limit: 40))=\"…\"")
        }
        return (name, String(value.dropFirst().dropLast()))
    }

    /// YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]: UTC with Z, else the host's time zone (as ssh-keygen).
    static func timestamp(_ text: String) -> Int64? {
        var digits = text
        let utc = digits.hasSuffix("Z") || digits.hasSuffix("z")
        if utc { digits.removeLast() }
        guard [8, 12, 14].contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        let value = Array(digits.utf8).map { Int32($0 - 48) }
        func number(_ range: Range<Int>) -> Int32 { value[range].reduce(0) { $0 * 10 + $1 } }
        var parts = tm()
        parts.tm_year = number(0..<4) - 1900
        parts.tm_mon = number(4..<6) - 1
        parts.tm_mday = number(6..<8)
        if digits.count >= 12 { parts.tm_hour = number(8..<10); parts.tm_min = number(10..<12) }
        if digits.count == 14 { parts.tm_sec = number(12..<14) }
        guard (0...11).contains(parts.tm_mon), (1...31).contains(parts.tm_mday), (0...23).contains(parts.tm_hour),
              (0...59).contains(parts.tm_min), (0...60).contains(parts.tm_sec) else { return nil }
        parts.tm_isdst = -1
        let seconds = utc ? timegm(&parts) : mktime(&parts)
        return seconds == -1 ? nil : Int64(seconds)
    }
}

extension AllowedSigners {
    /// The entry that vouches for `key` signing for `namespace` at `time`:
    /// the first, in file order, whose key is `key` and whose namespaces and
    /// window hold. A signature made with a certificate is vouched for only by
    /// a `cert-authority` line for the CA that signed it (as `ssh-keygen -Y
    /// verify` decides: not by a plain line of the certified key), and the
    /// entry returned names the certificate's principal that the line's
    /// patterns match. Revoking the certified key or the CA revokes it. When
    /// the key is listed but no entry holds, the first entry's reason.
    public func signer(for key: SSHPublicKey, namespace: String, at time: Int64,
                       revoked: RevokedKeys = RevokedKeys()) throws(SignerRefusal) -> Entry {
        let plain = key.plain
        if revoked.contains(plain) { throw .revoked(fingerprint: key.fingerprint) }
        var firstRefusal: SignerRefusal?
        for entry in entries where key.certificate == nil && !entry.isCertificateAuthority && entry.key == plain {
            if let refusal = Self.refusal(entry, namespace: namespace, at: time) {
                firstRefusal = firstRefusal ?? refusal
            } else {
                return entry
            }
        }
        if let certificate = key.certificate {
            let ca: SSHPublicKey
            do {
                ca = try certificate.caKey()
            } catch {
                throw .certificate(fingerprint: key.fingerprint, keyID: certificate.keyID, .badSignature("\(error)"))
            }
            if revoked.contains(ca) { throw .revoked(fingerprint: ca.fingerprint) }
            for entry in entries where entry.isCertificateAuthority && entry.key == ca {
                if let refusal = Self.refusal(entry, namespace: namespace, at: time) {
                    firstRefusal = firstRefusal ?? refusal
                    continue
                }
                switch certificate.check(ca: ca, principalPatterns: entry.principals, at: time) {
                case .success(let principal):
                    // The certificate's principal, as `ssh-keygen -Y find-principals` names it.
                    return Entry(principals: principal, key: entry.key, isCertificateAuthority: true, namespaces: entry.namespaces,
                                 validAfter: entry.validAfter, validBefore: entry.validBefore, line: entry.line)
                case .failure(let refusal):
                    firstRefusal = firstRefusal ?? .certificate(fingerprint: key.fingerprint, keyID: certificate.keyID, refusal)
                }
            }
            throw firstRefusal ?? .unknownCertificateAuthority(fingerprint: ca.fingerprint, keyID: certificate.keyID)
        }
        throw firstRefusal ?? .unknownKey(fingerprint: key.fingerprint)
    }

    /// Why `entry` does not vouch for `namespace` at `time`; nil when it does.
    private static func refusal(_ entry: Entry, namespace: String, at time: Int64) -> SignerRefusal? {
        if let namespaces = entry.namespaces, !SSHPattern.matchesList(namespaces, namespace) {
            return .namespaceNotAllowed(principal: entry.principal, namespace: namespace)
        }
        if let after = entry.validAfter, time < after { return .notYetValid(principal: entry.principal, validAfter: after) }
        if let before = entry.validBefore, time > before { return .expired(principal: entry.principal, validBefore: before) }
        return nil
    }
}
