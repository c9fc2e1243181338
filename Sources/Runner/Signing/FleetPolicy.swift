import Foundation
import Glibc
import Sandbox
import Synchronization
import TOMLKit
import Trust

/// A fleet-wide policy on main (docs/ARCHITECTURE.md §9): `.dgrid/policy.toml` in
/// `trust/policy.toml`'s format plus `grid` (this grid's id) and `serial` (a
/// number each new version raises), signed beside it (`.dgrid/policy.toml.sig`)
/// for namespace `dgrid-policy` by a key the host's `allowed_signers` trusts for
/// it. The host's own file is laid over it and always wins; the fleet's file
/// may not turn signatures off (only a host opts out for itself). A policy
/// that does not hold — unsigned, an untrusted or revoked signer, another
/// grid's, older than one this host applied (a rollback) — is refused and the
/// host's own policy stays in force.
public enum FleetPolicy {
    public static let path = ".dgrid/policy.toml"
    public static let signaturePath = path + TaskSignatureFiles.sshSuffix
    public static let namespace = "dgrid-policy"
    /// Far above any real policy; a bigger file is refused unread.
    public static let maxBytes = 256 << 10

    public enum Outcome: Equatable, Sendable, CustomStringConvertible {
        case absent
        case applied(serial: Int, signedBy: [String])
        case refused(String)

        public var description: String {
            switch self {
            case .absent: "no fleet policy on main"
            case .applied(let serial, let signers): "fleet policy serial \(serial) applied, signed by \(signers.joined(separator: ", "))"
            case .refused(let why): "fleet policy refused, this host's own policy stays in force: \(why)"
            }
        }
    }

    /// The host's trust with the fleet policy beneath its own, or the host's
    /// alone and why the fleet's was refused.
    public static func effective(host: HostTrust, policy: [UInt8]?, signature: [UInt8]?, grid: GridID?,
                                 pin: PolicySerialPin?, now: Date = Date()) -> (HostTrust, Outcome) {
        guard let policy else { return (host, .absent) }
        switch verify(host: host, policy: policy, signature: signature, grid: grid, pin: pin, now: now) {
        case .success(let (merged, serial, signers)): return (host.with(policy: merged), .applied(serial: serial, signedBy: signers))
        case .failure(let refusal): return (host, .refused(refusal.why))
        }
    }

    struct Refusal: Error { let why: String }

    private static func verify(host: HostTrust, policy: [UInt8], signature: [UInt8]?, grid: GridID?, pin: PolicySerialPin?,
                               now: Date) -> Result<(TrustPolicy, Int, [String]), Refusal> {
        guard policy.count <= maxBytes else { return .failure(Refusal(why: "\(path) is \(policy.count) bytes, over \(maxBytes)")) }
        guard let signature else {
            return .failure(Refusal(why: "\(path) is not signed (sign it with `ssh-keygen -Y sign -n \(namespace)` into \(signaturePath))"))
        }
        // Who signed it, by this host's allowed_signers, for namespace dgrid-policy.
        var signers: [String] = []
        var firstRefusal: String?
        do {
            for block in try SSHSignature.all(inArmored: signature) {
                let key = try block.verify(policy, namespace: namespace)
                do {
                    let entry = try host.store.allowedSigners.signer(for: key, namespace: namespace, at: Int64(now.timeIntervalSince1970),
                                                                     revoked: host.store.revokedKeys)
                    if !signers.contains(entry.principal) { signers.append(entry.principal) }
                } catch {
                    if case .revoked = error { return .failure(Refusal(why: "\(error)")) }
                    firstRefusal = firstRefusal ?? "\(error)"
                }
            }
        } catch {
            return .failure(Refusal(why: "\(signaturePath): \(error)"))
        }
        guard !signers.isEmpty else { return .failure(Refusal(why: firstRefusal ?? "no trusted signer")) }
        guard let text = String(validating: policy, as: UTF8.self) else { return .failure(Refusal(why: "\(path) is not UTF-8 text")) }
        let table: TOMLTable
        do {
            table = try TrustPolicy.table(text, source: path)
        } catch {
            return .failure(Refusal(why: "\(error)"))
        }
        // The fleet file's own keys: which grid, which version.
        guard let named = table["grid"]?.string else { return .failure(Refusal(why: "\(path) must name its grid in grid = \"g-…\"")) }
        guard let grid, named == grid.value else {
            return .failure(Refusal(why: "\(path) is for grid \(UntrustedText.shown(named, limit: 40)), not this one (\(grid?.value ?? "none")): a replay from another grid"))
        }
        guard let serial = table["serial"]?.int, serial >= 1 else {
            return .failure(Refusal(why: "\(path) must carry serial = N (a whole number ≥ 1, raised with each new version)"))
        }
        if table["require_signatures"] != nil {
            return .failure(Refusal(why: "\(path) may not set require_signatures: only a host's own trust/policy.toml (or --allow-unsigned) opts out"))
        }
        if let pin, let applied = pin.highest, serial < applied {
            return .failure(Refusal(why: "\(path) has serial \(serial), older than serial \(applied) this host applied: a rollback (the pin is \(pin.path))"))
        }
        table.remove(at: "grid")
        table.remove(at: "serial")
        let merged: TrustPolicy
        do {
            let hostTable = try host.policyText.map { (text) throws(TrustFileError) in try TrustPolicy.table(text, source: "trust/policy.toml") } ?? TOMLTable()
            merged = try TrustPolicy.parse(table: TrustPolicy.overlay(hostTable, onto: table), source: path)
        } catch {
            return .failure(Refusal(why: "\(error)"))
        }
        pin?.record(serial)
        return .success((merged, serial, signers))
    }
}

/// The highest fleet policy serial this host applied for a grid
/// (`$DGRID_HOME/grids/<hash>.policy-serial`): an older signed policy pushed back
/// onto main is a rollback and is refused.
public final class PolicySerialPin: Sendable {
    public let path: String
    private let value = Mutex<Int?>(nil)

    public init(path: String) {
        self.path = path
        if let data = FileManager.default.contents(atPath: path),
           let serial = Int(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
            value.withLock { $0 = serial }
        }
    }

    public var highest: Int? { value.withLock { $0 } }

    /// Raises the pin to `serial` (best effort on disk; always in memory).
    func record(_ serial: Int) {
        value.withLock { current in
            guard current.map({ serial > $0 }) ?? true else { return }
            current = serial
            let temporary = path + ".new"
            unlink(temporary)
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return }
            let bytes = Array("\(serial)\n".utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            rename(temporary, path)
        }
    }
}
