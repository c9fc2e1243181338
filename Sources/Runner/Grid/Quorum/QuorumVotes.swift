import Trust

/// A quorum task's votes as the fold reads them (docs/ARCHITECTURE.md §11):
/// each vote is its node's signed result for one replica, and counts only if
/// the record is that task's and that replica's, its signature holds for the
/// node under this host's worker trust, the replica's claim ref names the same
/// node (signed by it: no vote for a replica the node never claimed, nor for one
/// taken over from it), and it is the node's only vote on the task (replicas go
/// to distinct nodes: a node that took two keeps its lowest).
struct QuorumVotes {
    /// The most of a vote's record that is read.
    static let recordLimit = 4 << 20

    struct Refused {
        let replica: Int
        let commit: GitOID
        let nodeID: String
        let refusal: WorkerTrust.Refusal
    }

    private(set) var valid: [QuorumTally.Vote] = []
    private(set) var refused: [Refused] = []

    /// `gate`: this host's reputation policy; a vote by a node it refuses (barred, or on probation) does not count.
    init(taskID: String, snapshot: GridSnapshot, connection: GridConnection, trust: WorkerTrust, gate: ReputationGate? = nil) throws(GridError) {
        let claims = GridClaims(connection: connection)
        var voters: [String: Int] = [:], operators: [String: Int] = [:]
        for (replica, commit) in (snapshot.votes[taskID] ?? [:]).sorted(by: { $0.key < $1.key }) {
            func refuse(_ nodeID: String, _ reason: String, fingerprint: String? = nil) {
                refused.append(Refused(replica: replica, commit: commit, nodeID: nodeID,
                                       refusal: WorkerTrust.Refusal(reason: reason, fingerprint: fingerprint)))
            }
            let signed: SignedRecord?
            do {
                signed = try connection.signedRecord("result.json", of: commit, limit: Self.recordLimit)
            } catch GridError.objectGone {
                continue  // folded by someone else since the listing
            }
            guard let signed, let record = ResultRecord.parse(signed.bytes) else {
                refuse("unknown", "the vote at replica \(replica) holds no readable result record")
                continue
            }
            guard record.taskID == taskID, record.replica == replica else {
                refuse(record.nodeID, "the record is task \(record.taskID)'s\(record.replica.map { " replica \($0)" } ?? ""), "
                       + "published as task \(taskID)'s replica \(replica): a replay")
                continue
            }
            if let refusal = trust.refusal(of: signed, nodeID: record.nodeID) {
                refused.append(Refused(replica: replica, commit: commit, nodeID: record.nodeID, refusal: refusal))
                continue
            }
            if let gate, let why = try gate.refusal(record.nodeID, gated: true) {
                refuse(record.nodeID, "\(why): its vote on quorum task \(taskID) does not count")
                continue
            }
            let claimCommit = snapshot.replicaClaims[taskID]?[replica]
            let claim = try claimCommit.flatMap { (commit) throws(GridError) in try claims.record(at: commit) }
            guard let claimCommit, let claim, claim.taskID == taskID, claim.replica == replica, claim.nodeID == record.nodeID,
                  try claims.refusal(at: claimCommit, record: claim, trust: trust) == nil else {
                let holder = claim.map { "its claim names node \($0.nodeID)" } ?? "it has no claim"
                refuse(record.nodeID, "a vote for replica \(replica) of task \(taskID), which node \(record.nodeID) never claimed (\(holder))")
                continue
            }
            if let first = voters[record.nodeID] {
                refuse(record.nodeID, "a second replica of task \(taskID) by node \(record.nodeID): replicas go to distinct nodes, "
                       + "its vote at replica \(first) is the one that counts")
                continue
            }
            // Distinct operators, when this host asks: one vote per trust anchor (a node key, or the CA behind it).
            if gate?.policy.distinctOperators == true, let anchor = WorkerTrust.anchor(of: signed.signature) {
                if let first = operators[anchor] {
                    refuse(record.nodeID, "a second replica of task \(taskID) by the operator behind replica \(first) (\(anchor)): "
                           + "this host's policy asks for distinct operators")
                    continue
                }
                operators[anchor] = replica
            }
            voters[record.nodeID] = replica
            valid.append(QuorumTally.Vote(replica: replica, record: record, bytes: signed.bytes, signature: signed.signature, commit: commit))
        }
    }
}
