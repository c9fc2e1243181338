import Foundation
import Sandbox
import Trust

/// Which workers' records count here (docs/ARCHITECTURE.md §11): the fold takes a
/// result or a heartbeat only when its `<record>.sig` is a valid signature of its
/// exact bytes (namespace `dgrid-result`) by a key this host accepts for the
/// node the record names. Decided by this host's files alone — a node record
/// announcing a key is only a claim (docs/THREATS.md T27).
public enum WorkerTrustMode: String, Sendable, CaseIterable {
    /// `trust/allowed_workers` (allowed_signers format, principals are node ids,
    /// `cert-authority` for an SSH CA that certifies nodes): only keys listed for the node.
    case allowedWorkers = "allowed_workers"
    /// An open grid: the first key seen for a node id is pinned in
    /// `trust/known_workers`; a record of that node signed by any other key is refused.
    case trustOnFirstUse = "tofu"
    /// Nothing checked: records are taken on the worker's word (a private grid of
    /// one operator's hosts, or D-GRID's own unsigned workers). Said at every fold.
    case off
}

public struct WorkerTrust: Sendable {
    public static let allowedWorkersName = "allowed_workers"
    public static let knownWorkersName = "known_workers"

    public let mode: WorkerTrustMode
    let allowed: AllowedSigners
    let revoked: RevokedKeys
    /// Where TOFU pins are kept (`trust/known_workers`); nil in the other modes.
    let knownWorkersPath: String?
    /// The pins read when loaded, and those this process added since; under `pinLock`.
    private let pins: PinBook
    /// Which trusted nodes take which work, by their reputation (`[reputation]` in this host's policy.toml).
    public var reputation = ReputationPolicy()

    /// A record refused: why, and by which key it was signed when one could be read.
    public struct Refusal: Sendable, Equatable {
        public let reason: String
        public let fingerprint: String?
    }

    init(mode: WorkerTrustMode, allowed: AllowedSigners = AllowedSigners(entries: []), revoked: RevokedKeys = RevokedKeys(),
         knownWorkersPath: String? = nil, pins: [String: SSHPublicKey] = [:], state: StateDirectory? = nil) {
        self.mode = mode
        self.allowed = allowed
        self.revoked = revoked
        self.knownWorkersPath = knownWorkersPath
        self.pins = PinBook(pins, state: state)
    }

    /// Entries of `allowed_workers` (0 in the other modes), for what the host says about itself.
    public var allowedCount: Int { allowed.entries.count }

    /// This host's worker trust: the mode `policy.toml` states (`worker_trust`),
    /// else `allowed_workers` when that file exists, else trust on first use.
    public static func load(state: StateDirectory, trust: HostTrust) throws(TrustFileError) -> WorkerTrust {
        let directory: String?
        do {
            directory = try state.existingDirectory(TrustStore.directoryName)
        } catch {
            throw TrustFileError(file: state.path + "/" + TrustStore.directoryName, problem: .permissions("\(error)"))
        }
        let allowedPath = directory.map { $0 + "/" + allowedWorkersName }
        let allowedText = try allowedPath.flatMap { (path) throws(TrustFileError) in try TrustStore.readText(path) }
        let mode = trust.policy.workerTrust ?? (allowedText != nil ? .allowedWorkers : .trustOnFirstUse)
        var loaded = try load(mode: mode, state: state, trust: trust, directory: directory, allowedPath: allowedPath, allowedText: allowedText)
        loaded.reputation = trust.policy.reputation
        return loaded
    }

    private static func load(mode: WorkerTrustMode, state: StateDirectory, trust: HostTrust, directory: String?, allowedPath: String?,
                             allowedText: String?) throws(TrustFileError) -> WorkerTrust {
        switch mode {
        case .allowedWorkers:
            guard let allowedPath, let allowedText else {
                throw TrustFileError(file: (directory ?? state.path + "/" + TrustStore.directoryName) + "/" + allowedWorkersName,
                                     problem: .syntax("policy.toml says worker_trust = \"allowed_workers\" but there is no such file: list each node as `NODE_ID ssh-ed25519 KEY` (`dgrid node show` prints the line)"))
            }
            return WorkerTrust(mode: mode, allowed: try AllowedSigners.parse(allowedText, source: allowedPath), revoked: trust.store.revokedKeys)
        case .trustOnFirstUse:
            // The file, and the directory, are made at the first pin (loading changes nothing: `dgrid doctor` loads it too).
            let path = (directory ?? state.path + "/" + TrustStore.directoryName) + "/" + knownWorkersName
            var pins: [String: SSHPublicKey] = [:]
            if directory != nil, let text = try TrustStore.readText(path) { pins = KnownWorkers.parse(text) }
            return WorkerTrust(mode: mode, revoked: trust.store.revokedKeys, knownWorkersPath: path, pins: pins, state: state)
        case .off:
            return WorkerTrust(mode: mode)
        }
    }

    /// Who stands behind a signed record, for "distinct operators" (docs/ARCHITECTURE.md §11):
    /// the CA that certified the signing key, else the key itself — nodes sharing a key or a CA
    /// are one operator. nil when the signature cannot be read.
    public static func anchor(of signature: [UInt8]?) -> String? {
        guard let signature, let key = try? SSHSignature(armored: signature).publicKey else { return nil }
        return anchor(of: key)
    }

    /// The anchor of a key: its CA's fingerprint when it is certified, else its own.
    public static func anchor(of key: SSHPublicKey) -> String? {
        if let certificate = key.certificate { return certificate.authorityFingerprint.map { "ca:" + $0 } }
        return "key:" + key.plain.fingerprint
    }

    /// nil when `signature` is `nodeID`'s valid signature of `record` under this host's
    /// trust; else why not. Trust on first use pins the key on the first valid one.
    public func refusal(of record: [UInt8], signature: [UInt8]?, nodeID: String, now: Date = Date()) -> Refusal? {
        if mode == .off { return nil }
        guard let signature, !signature.isEmpty else {
            return Refusal(reason: "unsigned: no \(NodeKey.signatureSuffix) beside the record (dgrid workers sign every record with their node key)", fingerprint: nil)
        }
        let key: SSHPublicKey
        do {
            key = try SSHSignature(armored: signature).verify(record, namespace: NodeKey.namespace)
        } catch {
            return Refusal(reason: "the signature does not hold: \(error)", fingerprint: nil)
        }
        let fingerprint = key.fingerprint
        if revoked.contains(key.plain) { return Refusal(reason: "signed with a revoked key (\(fingerprint), in revoked_keys)", fingerprint: fingerprint) }
        switch mode {
        case .off:
            return nil
        case .allowedWorkers:
            do {
                let entry = try allowed.signer(for: key, namespace: NodeKey.namespace, at: Int64(now.timeIntervalSince1970), revoked: revoked)
                guard entry.vouches(for: nodeID) else {
                    return Refusal(reason: "signed by \(fingerprint), which allowed_workers lists for \(UntrustedText.quoted(entry.principals, limit: 80)), not for node \(nodeID)",
                                   fingerprint: fingerprint)
                }
                return nil
            } catch {
                return Refusal(reason: "signed by a key allowed_workers does not accept: \(error)", fingerprint: fingerprint)
            }
        case .trustOnFirstUse:
            guard key.certificate == nil else { return Refusal(reason: "signed with a certificate: trust on first use pins plain keys", fingerprint: fingerprint) }
            switch pins.pin(nodeID, key, path: knownWorkersPath, now: now) {
            case .pinned: return nil
            case .conflict(let pinned):
                return Refusal(reason: "node \(nodeID) is known here by \(pinned.fingerprint) (known_workers); this record is signed by \(fingerprint): another worker using its name, or a new key — if the node really has a new key, remove its line from known_workers",
                               fingerprint: fingerprint)
            case .unrecorded(let why):
                return Refusal(reason: "could not pin node \(nodeID)'s first key: \(why)", fingerprint: fingerprint)
            }
        }
    }
}

/// `trust/known_workers`: one line per node, `NODE_ID ssh-ed25519 BASE64 FIRST_SEEN`,
/// appended by the fold the first time it sees a node's valid signature. The first
/// line of a node id wins (two folders racing to pin append two; both read the first).
enum KnownWorkers {
    static func parse(_ text: String) -> [String: SSHPublicKey] {
        var pins: [String: SSHPublicKey] = [:]
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 3, LedgerLayout.isValidNodeID(String(words[0])), pins[String(words[0])] == nil,
                  let key = try? SSHPublicKey(line: words[1] + " " + words[2]) else { continue }
            pins[String(words[0])] = key
        }
        return pins
    }

    static func line(_ nodeID: String, _ key: SSHPublicKey, at now: Date) -> String {
        "\(nodeID) \(key.algorithm.rawValue) \(Data(key.blob).base64EncodedString()) \(ISOTime.string(now))\n"
    }
}

/// The pins of one process, and the file they are appended to.
final class PinBook: @unchecked Sendable {
    enum Outcome { case pinned, conflict(SSHPublicKey), unrecorded(String) }
    private var pins: [String: SSHPublicKey]
    private let lock = NSLock()
    /// Where the trust directory is made, with its checks, before the first pin is written.
    private let state: StateDirectory?

    init(_ pins: [String: SSHPublicKey], state: StateDirectory?) {
        self.pins = pins
        self.state = state
    }

    func pin(_ nodeID: String, _ key: SSHPublicKey, path: String?, now: Date) -> Outcome {
        lock.withLock {
            if let pinned = pins[nodeID] { return pinned == key ? .pinned : .conflict(pinned) }
            guard let path else { return .unrecorded("no known_workers file") }
            // Another process may have pinned it since this one read the file: the file's first line wins.
            if let text = (try? TrustStore.readText(path)) ?? nil, let pinned = KnownWorkers.parse(text)[nodeID] {
                pins[nodeID] = pinned
                return pinned == key ? .pinned : .conflict(pinned)
            }
            if let state {
                do { _ = try state.directory(TrustStore.directoryName) } catch { return .unrecorded("\(error)") }
            }
            let line = Array(KnownWorkers.line(nodeID, key, at: now).utf8)
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return .unrecorded("\(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            // One write of one short line with O_APPEND: whole, never interleaved with another process's.
            guard line.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == line.count else {
                return .unrecorded("\(path): cannot write (disk full?)")
            }
            pins[nodeID] = key
            return .pinned
        }
    }
}
