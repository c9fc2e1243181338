import Trust
import Foundation

/// `nodes/<id>.json` with D-GRID's field names, which its dashboard reads
/// (`node_id`, `node_name`, `cpu_count`, `memory_gb`, `disk_gb`, `last_heartbeat`,
/// `status`), plus dgrid's `slots`, `worker_version`, `health` and `reason`.
public struct NodeRecord: Equatable, Sendable {
    public var nodeID: String
    public var nodeName: String
    public var cpuCount: Int
    public var memoryGB: Double
    public var diskGB: Double
    public var lastHeartbeat: String
    /// D-GRID uses "active"; dgrid adds "draining" and "offline".
    public var status: String
    public var slots: Int
    public var workerVersion: String
    /// Whether the node claims tasks; `status` stays the process's own state.
    public var health: NodeHealth
    /// The worker's Git circuit (`GitCircuitBreaker.State`'s word): "closed", "open", "half_open"; nil from older workers.
    public var gitCircuit: String?
    /// How often this node beats; a fold marks it `offline` after three silent intervals.
    public var heartbeatSeconds: Double?
    /// A `reputation` score the record carries (a finite number ≥ 0), which dgrid's
    /// workers do not write: shown by the dashboard as the record says it, unverified
    /// (docs/THREATS.md T26). Nil when absent.
    public var reputation: Double?
    /// The node's key (`ssh-ed25519 BASE64`) and its OpenSSH fingerprint (`NodeKey`): what
    /// its records are signed with. Only a claim — which key counts for a node is the
    /// host's policy, never the record's (docs/THREATS.md T27). Nil from older workers.
    public var publicKey: String?
    public var keyFingerprint: String?

    public init(
        nodeID: String, nodeName: String, cpuCount: Int, memoryGB: Double, diskGB: Double,
        lastHeartbeat: String, status: String, slots: Int = 1, workerVersion: String = "",
        health: NodeHealth = .healthy, gitCircuit: String? = nil, heartbeatSeconds: Double? = nil, reputation: Double? = nil,
        publicKey: String? = nil, keyFingerprint: String? = nil
    ) {
        self.nodeID = nodeID
        self.nodeName = nodeName
        self.cpuCount = cpuCount
        self.memoryGB = memoryGB
        self.diskGB = diskGB
        self.lastHeartbeat = lastHeartbeat
        self.status = status
        self.slots = slots
        self.workerVersion = workerVersion
        self.health = health
        self.gitCircuit = gitCircuit
        self.heartbeatSeconds = heartbeatSeconds
        self.reputation = reputation
        self.publicKey = publicKey
        self.keyFingerprint = keyFingerprint
    }

    /// A node whose last beat said it runs but which has been silent for three of its
    /// intervals (or, from a worker that does not say its interval, for `fallbackSeconds`):
    /// gone without saying so (killed, host down, cut off).
    public func isSilent(now: Date, fallbackSeconds: Double) -> Bool {
        guard status == "active" || status == "draining", let last = ISOTime.parse(lastHeartbeat) else { return false }
        return now.timeIntervalSince(last) > heartbeatSeconds.map { 3 * $0 } ?? fallbackSeconds
    }

    public func json() -> [UInt8] {
        LedgerJSON.write(.object([
            "node_id": .string(nodeID), "node_name": .string(nodeName), "cpu_count": .int(Int64(cpuCount)),
            "memory_gb": .real(memoryGB), "disk_gb": .real(diskGB), "last_heartbeat": .string(lastHeartbeat),
            "status": .string(status), "slots": .int(Int64(slots)), "worker_version": .string(workerVersion),
            "health": .string(health.word), "reason": .text(health.reason),
        ].merging(gitCircuit.map { ["git_circuit": .string($0)] } ?? [:]) { first, _ in first }
         .merging(heartbeatSeconds.map { ["heartbeat_seconds": .real($0)] } ?? [:]) { first, _ in first }
         .merging(publicKey.map { ["public_key": .string($0)] } ?? [:]) { first, _ in first }
         .merging(keyFingerprint.map { ["key_fingerprint": .string($0)] } ?? [:]) { first, _ in first }))
    }

    /// Nil unless `node_id` is valid (it names the file); every other field defaults.
    public static func parse(_ bytes: [UInt8]) -> NodeRecord? {
        guard let f = RecordFields(bytes), let nodeID = f.string("node_id"), LedgerLayout.isValidNodeID(nodeID) else { return nil }
        return NodeRecord(
            nodeID: nodeID, nodeName: f.string("node_name") ?? nodeID, cpuCount: f.int("cpu_count") ?? 0,
            memoryGB: f.double("memory_gb") ?? 0, diskGB: f.double("disk_gb") ?? 0,
            lastHeartbeat: f.string("last_heartbeat") ?? "", status: f.string("status") ?? "unknown",
            slots: f.int("slots") ?? 1, workerVersion: f.string("worker_version") ?? "",
            health: NodeHealth.parse(health: f.string("health"), reason: f.string("reason")),
            gitCircuit: f.string("git_circuit").flatMap { GitCircuitBreaker.State(rawValue: $0)?.rawValue },
            heartbeatSeconds: f.double("heartbeat_seconds").flatMap { $0 > 0 && $0.isFinite ? $0 : nil },
            reputation: f.double("reputation").flatMap { $0 >= 0 && $0.isFinite ? $0 : nil },
            publicKey: f.string("public_key").flatMap { $0.utf8.count <= 200 && (try? SSHPublicKey(line: $0)) != nil ? $0 : nil },
            keyFingerprint: f.string("key_fingerprint").flatMap { $0.hasPrefix("SHA256:") && $0.utf8.count <= 60 ? $0 : nil })
    }
}
