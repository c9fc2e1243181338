import Foundation
import Sandbox
import Trust

/// Who a task's signatures say sent it, once they hold.
public struct TaskAuthentication: Equatable, Sendable {
    /// Distinct trusted principals, in signature order; empty when unsigned
    /// (only where the policy or `--allow-unsigned` lets unsigned tasks run).
    public var principals: [String]
    public var fingerprints: [String]

    public var isSigned: Bool { !principals.isEmpty }
    /// Whose task this is for quotas, images and limits: the first trusted
    /// signer in the file (the submitter; later signatures are co-signers').
    /// nil: unsigned.
    public var principal: String? { principals.first }
}

/// Why a task is refused by the trust check. Each is the task's own doing
/// (final: `tasks/rejected/` with this reason), never the host's.
public enum TaskTrustRefusal: Error, Equatable, CustomStringConvertible, Sendable {
    case unsigned
    case signatureFile(SignatureRefusal)
    case openPGP(OpenPGPRefusal)
    case signer(SignerRefusal)
    case noGrid
    case gridNotNamed
    case otherGrid(named: String, this: GridID)
    case expired(notAfter: String)
    case alreadyFinished(taskID: String)
    case tooFewSigners(have: [String], need: Int)
    case gridChanged(pinned: GridID, seen: String?, pinFile: String)

    public var description: String {
        switch self {
        case .unsigned: "unsigned: this host requires a signature (sign with `dgrid sign FILE` or `ssh-keygen -Y sign -n dgrid-task FILE`)"
        case .signatureFile(let refusal): "\(refusal)"
        case .openPGP(let refusal): "\(refusal)"
        case .signer(let refusal): "\(refusal)"
        case .noGrid: "this grid has no id yet, so no signed task can name it: run `dgrid init --repo URL`"
        case .gridNotNamed: "a signed task must name its grid in \"grid\" (`dgrid status` shows grid_id)"
        case .otherGrid(let named, let this): "signed for grid \(UntrustedText.shown(named, limit: 40)), not this one (\(this)): a replay from another grid"
        case .expired(let notAfter): "past its not_after (\(UntrustedText.shown(notAfter, limit: 40)))"
        case .alreadyFinished(let id): "task \(UntrustedText.shown(id, limit: 130)) already has a result on this grid: a replay"
        case .gridChanged(let pinned, let seen, let pinFile):
            "this grid's id on main is \(seen.map { UntrustedText.shown($0, limit: 40) } ?? "gone"), but this host first saw \(pinned): "
                + "a repository writer may have rewritten .dgrid/grid.json to replay another grid's tasks; signed tasks are refused "
                + "until an operator who knows the grid was re-initialised removes \(pinFile)"
        case .tooFewSigners(let have, let need):
            "needs \(need) distinct trusted signers, has \(have.count)\(have.isEmpty ? "" : " (" + have.map { UntrustedText.shown($0, limit: 64) }.joined(separator: ", ") + ")")"
        }
    }
}

/// The check a worker makes before it runs a task, and `dgrid verify` makes to
/// show a submitter what a worker will decide (docs/ARCHITECTURE.md §9): every
/// signature in the task's `.sig` verifies over the exact bytes of the task
/// file (namespace `dgrid-task`); enough distinct principals of this host's
/// `allowed_signers` stand behind it; it names this grid, is not past its
/// `not_after`, and its id has no result here yet.
public struct TaskSignatureCheck: Sendable {
    public static let namespace = "dgrid-task"
    public static let signatureSuffix = ".sig"

    public let trust: HostTrust
    /// Let unsigned tasks run (`--allow-unsigned`, or the policy's
    /// `require_signatures = false`). Signed ones are still checked in full.
    public let allowUnsigned: Bool

    /// The image a task naming none runs on: what `[[signers]]` rules and
    /// per-principal image lists match it as.
    public let defaultImage: String

    public init(trust: HostTrust, allowUnsigned: Bool = false, defaultImage: String = "") {
        self.trust = trust
        self.defaultImage = defaultImage
        self.allowUnsigned = allowUnsigned || !trust.policy.requireSignatures
    }

    /// The check on a task with only an SSH `.sig` (or none).
    public func check(task: TaskFile, bytes: [UInt8], signatureFile: [UInt8]?, grid: GridID?,
                      finished: Bool, now: Date = Date()) throws(TaskTrustRefusal) -> TaskAuthentication {
        try check(task: task, bytes: bytes, signatures: TaskSignatureFiles(ssh: signatureFile), grid: grid, finished: finished, now: now)
    }

    public func check(task: TaskFile, bytes: [UInt8], signatures: TaskSignatureFiles, grid: GridID?,
                      finished: Bool, now: Date = Date()) throws(TaskTrustRefusal) -> TaskAuthentication {
        guard !signatures.isEmpty else {
            guard allowUnsigned else { throw .unsigned }
            return TaskAuthentication(principals: [], fingerprints: [])
        }
        let (principals, fingerprints, firstRefusal) = try signers(bytes: bytes, signatures: signatures, now: now)
        if principals.isEmpty { throw firstRefusal ?? .signer(.unknownKey(fingerprint: "?")) }
        let need = trust.policy.requiredSigners(priority: task.priority, image: task.image ?? defaultImage, principal: principals.first)
        guard principals.count >= need else { throw .tooFewSigners(have: principals, need: need) }
        try Self.checkNamesGrid(task, grid: grid)
        if let notAfter = task.notAfter, let limit = ISOTime.parse(notAfter), now > limit { throw .expired(notAfter: notAfter) }
        if finished { throw .alreadyFinished(taskID: task.taskID) }
        return TaskAuthentication(principals: principals, fingerprints: fingerprints)
    }

    /// Distinct trusted principals behind `signatures` over `bytes`, SSH first,
    /// with their keys' fingerprints; the first reason a signer was not trusted.
    /// Tampering (a signature that does not cover the bytes) and revoked keys
    /// refuse outright.
    private func signers(bytes: [UInt8], signatures: TaskSignatureFiles,
                         now: Date) throws(TaskTrustRefusal) -> ([String], [String], TaskTrustRefusal?) {
        let seconds = Int64(now.timeIntervalSince1970)
        var principals: [String] = [], fingerprints: [String] = []
        var firstRefusal: TaskTrustRefusal?
        if let file = signatures.ssh {
            for key in try Self.signingKeys(of: bytes, signatureFile: file) {
                do {
                    let entry = try trust.store.allowedSigners.signer(for: key, namespace: Self.namespace, at: seconds,
                                                                      revoked: trust.store.revokedKeys)
                    if !principals.contains(entry.principal) {
                        principals.append(entry.principal)
                        fingerprints.append(key.fingerprint)
                    }
                } catch {
                    if case .revoked = error { throw .signer(error) }
                    firstRefusal = firstRefusal ?? .signer(error)
                }
            }
        }
        if let file = signatures.openPGP {
            do throws(OpenPGPRefusal) {
                guard let keyring = trust.openPGPKeyring else {
                    throw OpenPGPRefusal.unavailable("this host has no OpenPGP keyring (\(TrustStore.directoryName)/\(OpenPGPKeyring.fileName))")
                }
                for signer in try OpenPGPVerifier(keyring: keyring).signers(of: bytes, signature: file) where !principals.contains(signer.principal) {
                    principals.append(signer.principal)
                    fingerprints.append(signer.fingerprint)
                }
            } catch {
                switch error {
                case .badSignature, .revoked: throw .openPGP(error)
                case .signer, .unavailable: firstRefusal = firstRefusal ?? .openPGP(error)
                }
            }
        }
        return (principals, fingerprints, firstRefusal)
    }

    /// The task's principal as quotas count it (the first trusted signer),
    /// without the checks that refuse it outright; nil when no signature holds.
    /// The picker uses it to decide what may run now; the full check runs once claimed.
    public func principal(bytes: [UInt8], signatureFile: [UInt8], now: Date = Date()) -> String? {
        principal(bytes: bytes, signatures: TaskSignatureFiles(ssh: signatureFile), now: now)
    }

    public func principal(bytes: [UInt8], signatures: TaskSignatureFiles, now: Date = Date()) -> String? {
        (try? signers(bytes: bytes, signatures: signatures, now: now))?.0.first
    }

    /// The key of every signature in `signatureFile`, each verified over
    /// `bytes` for `dgrid-task`. Who the keys belong to is the host's question;
    /// one signature that does not cover the bytes is tampering, and refuses all.
    public static func signingKeys(of bytes: [UInt8], signatureFile: [UInt8]) throws(TaskTrustRefusal) -> [SSHPublicKey] {
        do {
            var keys: [SSHPublicKey] = []
            for signature in try SSHSignature.all(inArmored: signatureFile) {
                keys.append(try signature.verify(bytes, namespace: namespace))
            }
            return keys
        } catch {
            throw .signatureFile(error)
        }
    }

    /// A signed task must name `grid`, the grid it is checked on.
    public static func checkNamesGrid(_ task: TaskFile, grid: GridID?) throws(TaskTrustRefusal) {
        guard let grid else { throw .noGrid }
        guard let named = task.grid else { throw .gridNotNamed }
        guard named == grid.value else { throw .otherGrid(named: named, this: grid) }
    }
}
