import Foundation
import Sandbox
import Trust

/// The host's OpenPGP keyring, `$DGRID_HOME/trust/openpgp.gpg` (keys as `gpg
/// --export` writes them), read under the trust files' owner and mode rules.
public struct OpenPGPKeyring: Sendable {
    public static let fileName = "openpgp.gpg"
    let bytes: [UInt8]
    public let path: String

    public init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }
}

/// One trusted OpenPGP signer of a task.
struct OpenPGPSigner: Equatable {
    /// The e-mail address of the key's primary user id (the whole id when it has none).
    let principal: String
    /// `OPENPGP:` and the primary key's fingerprint.
    let fingerprint: String
}

/// Why an OpenPGP signature is refused.
public enum OpenPGPRefusal: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file is no signature, or one does not cover the bytes: tampering, refuses the task.
    case badSignature(String)
    /// A valid signature by a key this host does not trust now (unknown, expired).
    case signer(String)
    /// A revoked key signed: refuses the task.
    case revoked(String)
    /// This host cannot check OpenPGP signatures.
    case unavailable(String)

    public var description: String {
        switch self {
        case .badSignature(let why): "OpenPGP signature refused: \(why)"
        case .signer(let why): "OpenPGP signer refused: \(why)"
        case .revoked(let why): "OpenPGP signer revoked: \(why)"
        case .unavailable(let why): "OpenPGP signature not checked: \(why)"
        }
    }
}

/// Verifies `<task>.json.asc` with `gpgv` (docs/ARCHITECTURE.md §9), GnuPG's
/// verify-only tool made for this: it checks signatures against exactly the
/// keyring it is given — no trust database, no key import, no network, no
/// agent — so a signature is good only by a key the host put in its keyring.
/// It runs on copies in a private temporary directory (the keyring as it was
/// checked when the worker loaded it), never on the grid's files.
struct OpenPGPVerifier {
    static let gpgv = "/usr/bin/gpgv"
    let keyring: OpenPGPKeyring

    /// The trusted signers of `signature` over `bytes`: at least one, or a refusal.
    func signers(of bytes: [UInt8], signature: [UInt8]) throws(OpenPGPRefusal) -> [OpenPGPSigner] {
        guard signature.count <= TaskSignatureFiles.maxBytes else {
            throw .badSignature("the file is \(signature.count) bytes, over \(TaskSignatureFiles.maxBytes)")
        }
        let status = try run(bytes: bytes, signature: signature)
        return try Self.interpret(status)
    }

    /// gpgv's `--status-fd` lines for one verification.
    private func run(bytes: [UInt8], signature: [UInt8]) throws(OpenPGPRefusal) -> String {
        // mkdtemp: a fresh directory only this user can enter (0700).
        var template = Array((NSTemporaryDirectory() + "/dgrid-gpgv-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw .unavailable("cannot make a private directory for gpgv: \(String(cString: strerror(errno)))")
        }
        let directory = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let keyringPath = directory + "/keyring.gpg", signaturePath = directory + "/task.asc", dataPath = directory + "/task.json"
        for (path, content) in [(keyringPath, keyring.bytes), (signaturePath, signature), (dataPath, bytes)] {
            guard FileManager.default.createFile(atPath: path, contents: Data(content), attributes: [.posixPermissions: 0o600]) else {
                throw .unavailable("cannot write \(path)")
            }
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.gpgv)
        process.arguments = ["--homedir", directory, "--status-fd", "1", "--keyring", keyringPath, "--", signaturePath, dataPath]
        process.environment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw .unavailable("cannot run \(Self.gpgv): \(error); install gpgv")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data.prefix(1 << 20), as: UTF8.self)
    }

    /// Reads gpgv's status lines (GnuPG's doc/DETAILS): each signature opens
    /// with NEWSIG and ends GOODSIG + VALIDSIG, or BADSIG, EXPKEYSIG,
    /// REVKEYSIG, EXPSIG, or ERRSIG (a key not in the keyring).
    static func interpret(_ status: String) throws(OpenPGPRefusal) -> [OpenPGPSigner] {
        var signers: [OpenPGPSigner] = []
        var firstRefusal: OpenPGPRefusal?
        // The signature being read: its user id once GOODSIG vouched for it.
        var good: String?
        var sawSignature = false
        func rest(_ words: [String]) -> String { UntrustedText.shown(words.dropFirst(3).joined(separator: " "), limit: 80) }
        for line in status.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard words.count >= 2, words[0] == "[GNUPG:]" else { continue }
            switch words[1] {
            case "NEWSIG":
                sawSignature = true
                good = nil
            case "GOODSIG":
                sawSignature = true
                good = words.dropFirst(3).joined(separator: " ")
            case "VALIDSIG":
                // Also sent for a good signature by an expired key: it counts only after GOODSIG.
                // VALIDSIG fpr date timestamp expire version reserved pubkey-algo hash-algo class primary-fpr
                guard let uid = good else { continue }
                guard words.count >= 12, let hash = Int(words[9]) else { throw .badSignature("gpgv reported a malformed VALIDSIG") }
                // 1 = MD5, 2 = SHA-1, 3 = RIPEMD-160: no longer safe for signatures.
                guard hash >= 8 else { throw .badSignature("signed with a weak hash (OpenPGP hash algorithm \(hash)); sign with SHA-256 or better") }
                signers.append(OpenPGPSigner(principal: principal(of: uid), fingerprint: "OPENPGP:" + words[11]))
                good = nil
            case "BADSIG":
                throw .badSignature("the signature does not match the file's bytes (changed after signing, or another file's signature)")
            case "REVKEYSIG":
                throw .revoked("signed by \(rest(words)), whose key is revoked in this host's keyring")
            case "EXPKEYSIG":
                sawSignature = true
                firstRefusal = firstRefusal ?? .signer("\(rest(words))'s key has expired")
            case "EXPSIG":
                sawSignature = true
                firstRefusal = firstRefusal ?? .signer("the signature has expired")
            case "ERRSIG":
                // ERRSIG keyid pkalgo hashalgo class time rc [fpr]: rc 9 is a key not in the keyring.
                sawSignature = true
                let keyID = words.count > 2 ? words[2] : "?"
                let code = words.count > 7 ? words[7] : "?"
                firstRefusal = firstRefusal ?? (code == "9"
                    ? .signer("signed by OpenPGP key \(UntrustedText.shown(keyID, limit: 40)), a key not in this host's \(OpenPGPKeyring.fileName)")
                    : .badSignature("gpgv cannot check it (error \(UntrustedText.shown(code, limit: 10)))"))
            case "NODATA":
                throw .badSignature("not an OpenPGP signature")
            default:
                continue
            }
        }
        if !signers.isEmpty { return signers }
        guard sawSignature else { throw .badSignature("not an OpenPGP signature") }
        throw firstRefusal ?? .badSignature("gpgv accepted no signature")
    }

    /// The address inside `<…>` of a user id, else the whole id.
    static func principal(of uid: String) -> String {
        if let open = uid.lastIndex(of: "<"), let close = uid.lastIndex(of: ">"), open < close {
            return String(uid[uid.index(after: open)..<close])
        }
        return uid
    }
}
