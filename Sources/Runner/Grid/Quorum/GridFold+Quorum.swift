import Foundation
import Trust

/// Quorum tasks in the fold (docs/ARCHITECTURE.md §11). A replicated task stays
/// in the queue while its replicas run; each replica's node publishes its vote
/// at `refs/dgrid/results/<id>/<n>`. When the valid votes (`QuorumVotes`) reach
/// agreement (`QuorumTally`), the task is folded once, as its canonical vote
/// says, and every vote is kept on main beside the tally (`QuorumLayout`): who
/// agreed, who was outvoted — anyone recomputes it from the signed votes. When
/// agreement can no longer come, the task fails with "no consensus" and every
/// vote shown. Refused votes are dropped and audited, as refused results are.
extension GridFold {
    /// Whether main queues `taskID` as a quorum task.
    func isReplicated(_ taskID: String, in snapshot: GridSnapshot) throws(GridError) -> Bool {
        guard let queued = snapshot.queuePaths(of: taskID).first, let blob = snapshot.files[queued] else { return false }
        return try connection.queuedHeader(blob).quorum != nil
    }

    /// Whether `taskID` (queued or in progress on main) is work this host's reputation policy gates.
    func isGated(_ taskID: String, in snapshot: GridSnapshot) throws(GridError) -> Bool {
        guard let path = snapshot.queuePaths(of: taskID).first ?? snapshot.inProgressPaths(of: taskID).first,
              let blob = snapshot.files[path] else { return false }
        let header = try connection.queuedHeader(blob)
        return ReputationGate.isGated(priority: header.priority, quorum: header.quorum)
    }

    func foldQuorums(_ snapshot: GridSnapshot, trust: WorkerTrust, gate: ReputationGate?, finishing: inout [String: ResultRecord],
                     changes: inout [String: [UInt8]?], folded: inout [(String, GitOID)], summary: inout Summary) throws(GridError) {
        let maxTaskBytes = connection.settings.limits.maxFileBytes
        for taskID in Set(snapshot.votes.keys).union(snapshot.replicaClaims.keys).sorted() {
            let ballots = snapshot.votes[taskID] ?? [:]
            let runs = ballots.map { (ReplicaRefs.vote(taskID, replica: $0.key), $0.value) }
                + (snapshot.replicaClaims[taskID] ?? [:]).map { (ReplicaRefs.claim(taskID, replica: $0.key), $0.value) }
            if finishing[taskID] != nil || snapshot.finishedTaskIDs.contains(taskID) {
                // Decided (or ended another way): runs left behind bind nothing and count for nothing.
                folded += runs
                continue
            }
            // Not queued: the task is not on main yet (its submission races its first replica), or never was.
            guard let queued = snapshot.queuePaths(of: taskID).first, let blob = snapshot.files[queued], !ballots.isEmpty else { continue }
            guard let quorum = try connection.queuedHeader(blob).quorum else {
                // A task run once has no replicas: votes at replica refs are a writer's, not a run of it.
                for (replica, commit) in ballots.sorted(by: { $0.key < $1.key }) {
                    report(.resultRefused, WorkerTrust.Refusal(reason: "a vote at replica \(replica) of task \(taskID), which is not a quorum task", fingerprint: nil),
                           commit: commit, nodeID: "unknown", taskID: taskID)
                    summary.refused += 1
                }
                folded += runs
                continue
            }
            let votes = try QuorumVotes(taskID: taskID, snapshot: snapshot, connection: connection, trust: trust, gate: gate)
            for refused in votes.refused {
                report(.resultRefused, refused.refusal, commit: refused.commit, nodeID: refused.nodeID, taskID: taskID)
                summary.refused += 1
                folded.append((ReplicaRefs.vote(taskID, replica: refused.replica), refused.commit))
            }
            let proven = quorum.adaptive ? try gate?.provenAmong(votes.valid.map(\.record.nodeID)) ?? [] : []
            let tally = QuorumTally(votes: votes.valid, quorum: quorum, proven: proven)
            let record: ResultRecord, recordBytes: [UInt8], recordSignature: [UInt8]?, taskBytes: [UInt8]
            switch tally.verdict {
            case .open:
                continue
            case .decided(let canonical, _, let dissenting):
                record = canonical.record
                recordBytes = canonical.bytes
                recordSignature = canonical.signature
                taskBytes = try connection.file("task.json", of: canonical.commit, limit: maxTaskBytes + 1) ?? []
                for vote in dissenting {
                    report(.resultOutvoted, WorkerTrust.Refusal(reason: "outvoted on task \(taskID): its replica \(vote.replica) disagreed with the \(tally.groups[0].count) agreeing of \(quorum.agree) needed",
                                                                fingerprint: nil),
                           commit: vote.commit, nodeID: vote.record.nodeID, taskID: taskID)
                }
                summary.outvoted += dissenting.count
            case .noConsensus:
                // The folder's own statement, signed by it: no run of its, no failure of any node (`consensus: false`).
                // Dated now, as a run's record is: archival and paging order records by when they finished.
                let now = ISOTime.string(Date())
                var failed = ResultRecord(taskID: taskID, nodeID: connection.settings.nodeID, exitCode: -1,
                                          stderr: "no consensus: \(votes.valid.count) of at most \(quorum.maxReplicas) replicas voted and no "
                                              + "\(quorum.agree) agreed (\(tally.groups.map { "\($0.count) × replica \($0[0].replica)'s outcome" }.joined(separator: ", "))); "
                                              + "every vote is under \(QuorumLayout.directory(taskID))",
                                          timestamp: now, status: .failed, startedAt: now, finishedAt: now)
                failed.consensus = false
                record = failed
                recordBytes = failed.json()
                recordSignature = try connection.nodeKey().sign(recordBytes)
                taskBytes = []
            }
            let destination = switch record.status {
            case .completed: LedgerLayout.completedPath(node: record.nodeID, taskID: taskID)
            case .rejected: LedgerLayout.rejectedPath(taskID: taskID)
            case .failed, .skipped: LedgerLayout.failedPath(node: record.nodeID, taskID: taskID)
            }
            if let occupant = try occupant(of: destination, in: snapshot, planned: changes) {
                // Never written over (a stray record at the name): the votes stay for a fold that can place them.
                keepLate(record, bytes: recordBytes, commit: tally.votes.first?.commit ?? GitOID.zero,
                         reason: "\(occupant); the quorum result of task \(taskID) is kept here instead of at \(destination)",
                         snapshot: snapshot, changes: &changes, summary: &summary)
                summary.conflicts += 1
                continue
            }
            if case .decided(let canonical, _, _) = tally.verdict {
                try keepArtifacts(of: canonical.record, from: canonical.commit, snapshot: snapshot, changes: &changes)
            }
            let signature = removeTaskFiles(snapshot.queuePaths(of: taskID), in: snapshot, changes: &changes)
            writeTask(taskBytes.isEmpty ? try connection.blob(blob, limit: maxTaskBytes + 1) : taskBytes, signature: signature,
                      to: destination, changes: &changes)
            changes[destination + LedgerLayout.logSuffix] = recordBytes
            if let recordSignature { changes[destination + LedgerLayout.logSuffix + NodeKey.signatureSuffix] = recordSignature }
            for (path, bytes) in QuorumLayout.files(taskID: taskID, tally: tally) { changes[path] = bytes }
            folded += runs.filter { run in !votes.refused.contains { $0.commit == run.1 } }
            if record.status == .rejected { summary.rejected += 1 }
            summary.finished += 1
            finishing[taskID] = record
        }
    }
}
