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

    public func check(task: TaskFile, bytes: [UInt8], signatureFile: [UInt8]?, grid: GridID?,
                      finished: Bool, now: Date = Date()) throws(TaskTrustRefusal) -> TaskAuthentication {
        guard let signatureFile else {
            guard allowUnsigned else { throw .unsigned }
            return TaskAuthentication(principals: [], fingerprints: [])
        }
        let seconds = Int64(now.timeIntervalSince1970)
        var principals: [String] = [], fingerprints: [String] = []
        var firstRefusal: SignerRefusal?
        for key in try Self.signingKeys(of: bytes, signatureFile: signatureFile) {
            do {
                let entry = try trust.store.allowedSigners.signer(for: key, namespace: Self.namespace, at: seconds,
                                                                  revoked: trust.store.revokedKeys)
                if !principals.contains(entry.principal) {
                    principals.append(entry.principal)
                    fingerprints.append(key.fingerprint)
                }
            } catch {
                if case .revoked = error { throw .signer(error) }
                firstRefusal = firstRefusal ?? error
            }
        }
        if principals.isEmpty { throw .signer(firstRefusal ?? .unknownKey(fingerprint: "?")) }
        let need = trust.policy.requiredSigners(priority: task.priority, image: task.image ?? defaultImage, principal: principals.first)
        guard principals.count >= need else { throw .tooFewSigners(have: principals, need: need) }
        try Self.checkNamesGrid(task, grid: grid)
        if let notAfter = task.notAfter, let limit = ISOTime.parse(notAfter), now > limit { throw .expired(notAfter: notAfter) }
        if finished { throw .alreadyFinished(taskID: task.taskID) }
        return TaskAuthentication(principals: principals, fingerprints: fingerprints)
    }

    /// The task's principal as quotas count it (the first trusted signer),
    /// without the checks that refuse it outright; nil when no signature holds.
    /// The picker uses it to decide what may run now; the full check runs once claimed.
    public func principal(bytes: [UInt8], signatureFile: [UInt8], now: Date = Date()) -> String? {
        guard let keys = try? Self.signingKeys(of: bytes, signatureFile: signatureFile) else { return nil }
        for key in keys {
            if let entry = try? trust.store.allowedSigners.signer(for: key, namespace: Self.namespace, at: Int64(now.timeIntervalSince1970),
                                                                   revoked: trust.store.revokedKeys) {
                return entry.principal
            }
        }
        return nil
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
