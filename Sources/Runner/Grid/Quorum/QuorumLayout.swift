/// Where a decided quorum task's votes live on main (docs/ARCHITECTURE.md §11):
/// `tasks/votes/<id>/<n>.json` — replica n's record as its node signed it —
/// with `.sig` beside it, and `quorum.json`, the tally as the fold saw it. The
/// tally is a convenience for readers: `dgrid reputation` recomputes agreement
/// from the signed votes and the task's own `quorum`, never from it.
enum QuorumLayout {
    static let root = "tasks/votes/"

    static func directory(_ taskID: String) -> String { root + taskID + "/" }

    static func votePath(_ taskID: String, replica: Int) -> String { directory(taskID) + "\(replica).json" }

    static func tallyPath(_ taskID: String) -> String { directory(taskID) + "quorum.json" }

    /// The task and replica of a vote file (`tasks/votes/<id>/<n>.json`); nil for any other path.
    static func vote(atPath path: String) -> (taskID: String, replica: Int)? {
        guard path.hasPrefix(root), path.hasSuffix(".json") else { return nil }
        let parts = path.dropFirst(root.count).dropLast(".json".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, TaskParser.isValidTaskID(String(parts[0])), let replica = Int(parts[1]), String(replica) == parts[1],
              ReplicaRefs.replicaRange.contains(replica) else { return nil }
        return (String(parts[0]), replica)
    }

    /// The vote files and the tally for `tally`'s task.
    static func files(taskID: String, tally: QuorumTally) -> [(String, [UInt8])] {
        var files: [(String, [UInt8])] = []
        let agreeing: Set<Int>
        let canonical: Int?
        if case .decided(let chosen, let agree, _) = tally.verdict {
            agreeing = Set(agree.map(\.replica))
            canonical = chosen.replica
        } else {
            agreeing = []
            canonical = nil
        }
        for vote in tally.votes {
            files.append((votePath(taskID, replica: vote.replica), vote.bytes))
            if let signature = vote.signature { files.append((votePath(taskID, replica: vote.replica) + NodeKey.signatureSuffix, signature)) }
        }
        let quorum = tally.quorum
        let summary: LedgerJSON.Value = .object([
            "task_id": .string(taskID),
            "replicas": .number(.init(Int64(quorum.replicas))), "agree": .number(.init(Int64(quorum.agree))),
            "max_replicas": .number(.init(Int64(quorum.maxReplicas))),
            "compare": .array(quorum.compare.sorted().map { .string($0.rawValue) }),
            "outcome": .string(canonical == nil ? "no_consensus" : "decided"),
            "canonical_replica": canonical.map { .number(.init(Int64($0))) } ?? .null,
            "votes": .array(tally.votes.map { vote in
                .object([
                    "replica": .number(.init(Int64(vote.replica))), "node_id": .string(vote.record.nodeID),
                    "status": .string(vote.record.status.rawValue), "exit_code": .number(.init(Int64(vote.record.exitCode))),
                    "stdout_sha256": .text(vote.record.stdoutSHA256), "agrees": .bool(agreeing.contains(vote.replica)),
                ])
            }),
            "dissenters": .array(canonical == nil ? [] : tally.votes.filter { !agreeing.contains($0.replica) }.map { .string($0.record.nodeID) }),
        ])
        files.append((tallyPath(taskID), LedgerJSON.write(summary)))
        return files
    }
}
