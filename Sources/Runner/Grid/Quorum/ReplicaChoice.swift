import Foundation

/// Which run of a quorum task this node may claim now (docs/ARCHITECTURE.md §11):
/// none when it already holds or voted one (replicas go to distinct nodes; to distinct
/// operators too — one key or one CA — when this host's policy says so), when
/// the task is decided or past consensus, or when the live claims and the votes
/// already make the runs the tally wants (`QuorumTally.runsWanted`); else the
/// lowest replica without a vote whose claim is absent, lapsed or released.
struct ReplicaChoice: Equatable {
    let replica: Int
    /// The claim commit on that replica's ref, lapsed or released: taken over.
    let takingOver: GitOID?

    /// `gate`: this host's reputation policy — a holder or voter it refuses counts for nothing
    /// (its replica is taken over), and an adaptive task held by a proven node wants no second run.
    static func choose(_ taskID: String, quorum: TaskQuorum, snapshot: GridSnapshot, connection: GridConnection,
                       gate: ReputationGate? = nil, now: Date) throws(GridError) -> ReplicaChoice? {
        let node = connection.settings.nodeID
        let claims = GridClaims(connection: connection)
        // With `quorum_distinct = "operators"` a second run by this node's operator would be refused by
        // the fold (`QuorumVotes`): not claimed at all.
        let ownAnchor = gate?.policy.distinctOperators == true ? WorkerTrust.anchor(of: try connection.nodeKey().publicKey) : nil
        let slots = snapshot.replicaClaims[taskID] ?? [:], ballots = snapshot.votes[taskID] ?? [:]
        try connection.prefetch(Array(slots.values) + Array(ballots.values))
        var votes: [QuorumTally.Vote] = []
        for (replica, commit) in ballots {
            // Unreadable or forged votes hold their replica until the fold drops them; they count for nothing.
            guard let signed = try? connection.signedRecord("result.json", of: commit, limit: QuorumVotes.recordLimit),
                  let record = ResultRecord.parse(signed.bytes), record.taskID == taskID, record.replica == replica else { continue }
            if record.nodeID == node { return nil }
            if let gate, try gate.refusal(record.nodeID, gated: true) != nil { continue }
            if let ownAnchor, WorkerTrust.anchor(of: signed.signature) == ownAnchor { return nil }
            votes.append(QuorumTally.Vote(replica: replica, record: record, bytes: signed.bytes, signature: signed.signature, commit: commit))
        }
        var live = 0, provenHolder = false
        var open: ReplicaChoice?
        for replica in 1...quorum.maxReplicas where ballots[replica] == nil {
            guard let commit = slots[replica] else {
                if open == nil { open = ReplicaChoice(replica: replica, takingOver: nil) }
                continue
            }
            let holder = try claims.record(at: commit)?.nodeID
            if try claims.isLive(commit, now: now), let holder, try gate?.refusal(holder, gated: true) == nil {
                if holder == node { return nil }
                if let ownAnchor, WorkerTrust.anchor(of: try claims.signature(at: commit)) == ownAnchor { return nil }
                live += 1
                if quorum.adaptive, try gate?.proven(holder) == true { provenHolder = true }
            } else if open == nil {
                open = ReplicaChoice(replica: replica, takingOver: commit)
            }
        }
        let proven = quorum.adaptive ? try gate?.provenAmong(votes.map(\.record.nodeID)) ?? [] : []
        let tally = QuorumTally(votes: votes, quorum: quorum, proven: proven)
        // Adaptive: a proven node's run under way is expected to decide alone.
        guard case .open = tally.verdict, !(provenHolder && votes.isEmpty), votes.count + live < tally.runsWanted else { return nil }
        return open
    }
}
