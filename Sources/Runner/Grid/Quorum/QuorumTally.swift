import Sandbox

/// The votes of one quorum task, counted (docs/ARCHITECTURE.md §11; BOINC's
/// validator): votes agree when they share the outcome the task compares
/// (`TaskQuorum.compare`: exit code, stdout, artifacts — and always the status,
/// so a timed-out run never agrees with a finished one). The largest group at
/// `agree` votes decides, its lowest replica is the canonical result; when the
/// runs left (`max_replicas`) can no longer make any group reach `agree`, there is
/// no consensus. Pure: the fold decides with it, the picker asks how many runs
/// are still wanted, `dgrid reputation` recomputes who was outvoted.
struct QuorumTally {
    struct Vote {
        let replica: Int
        let record: ResultRecord
        /// The record as signed, and its signature: what main keeps of each vote.
        let bytes: [UInt8]
        let signature: [UInt8]?
        let commit: GitOID
    }

    enum Verdict {
        case decided(canonical: Vote, agreeing: [Vote], dissenting: [Vote])
        /// Every run allowed is spent or cannot change the outcome.
        case noConsensus
        /// More votes are wanted.
        case open
    }

    let quorum: TaskQuorum
    /// By replica.
    let votes: [Vote]
    /// Voters whose one run decides an adaptive task (`ReputationGate.proven`).
    let proven: Set<String>
    /// Votes grouped by outcome, the largest first (ties: the group holding the lowest replica).
    let groups: [[Vote]]

    init(votes: [Vote], quorum: TaskQuorum, proven: Set<String> = []) {
        self.quorum = quorum
        self.proven = quorum.adaptive ? proven : []
        self.votes = votes.sorted { $0.replica < $1.replica }
        var byKey: [String: [Vote]] = [:], order: [String] = []
        for vote in self.votes {
            let key = Self.outcome(of: vote.record, comparing: quorum.compare)
            if byKey[key] == nil { order.append(key) }
            byKey[key, default: []].append(vote)
        }
        groups = order.map { byKey[$0]! }.enumerated().sorted { a, b in
            a.element.count != b.element.count ? a.element.count > b.element.count : a.offset < b.offset
        }.map(\.element)
    }

    var verdict: Verdict {
        let best = groups.first ?? []
        if best.count >= quorum.agree, let canonical = best.first {
            return .decided(canonical: canonical, agreeing: best, dissenting: votes.filter { vote in !best.contains { $0.replica == vote.replica } })
        }
        // Adaptive: a proven node's run decides alone, unless another vote disagrees with it.
        if groups.count == 1, let canonical = best.first(where: { proven.contains($0.record.nodeID) }) {
            return .decided(canonical: canonical, agreeing: best, dissenting: [])
        }
        return best.count + (quorum.maxReplicas - votes.count) < quorum.agree ? .noConsensus : .open
    }

    /// Runs wanted now, votes included: the replicas asked for, or as many as the
    /// largest group still needs to reach agreement, within `max_replicas`.
    var runsWanted: Int {
        guard case .open = verdict else { return votes.count }
        let best = groups.first?.count ?? 0
        return min(quorum.maxReplicas, max(quorum.replicas, votes.count + quorum.agree - best))
    }

    /// What two votes must share to agree, as one string.
    static func outcome(of record: ResultRecord, comparing fields: Set<TaskQuorum.Field>) -> String {
        var parts = ["status=" + record.status.rawValue]
        if fields.contains(.exitCode) { parts.append("exit=\(record.exitCode)") }
        if fields.contains(.stdout) {
            let digest = record.stdoutSHA256 ?? "sha256:" + Digest(of: Array(record.stdout.utf8)).hex
            parts.append("stdout=\(digest)+\(record.stdoutArtifact?.digest.description ?? "-")")
        }
        if fields.contains(.artifacts) {
            parts.append("artifacts=" + record.artifacts.map { "\($0.path)=\($0.digest)" }.sorted().joined(separator: ","))
        }
        return parts.joined(separator: ";")
    }
}
