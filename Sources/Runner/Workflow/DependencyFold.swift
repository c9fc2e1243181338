import Foundation
import Sandbox

/// The fold's part in workflows (docs/ARCHITECTURE.md §10): queued tasks whose
/// `dependency_mode` can no longer be met are folded into `tasks/failed/` as
/// `skipped`, and tasks on a dependency cycle or naming a task the grid never
/// had into `tasks/rejected/` — each with its reason, transitively, in the same
/// commit as the results that decided them.
struct DependencyFold {
    let connection: GridConnection
    let snapshot: GridSnapshot
    /// Results this fold is folding: task id → record.
    let finishing: [String: ResultRecord]

    struct Ending {
        let taskID: String
        let destination: String
        let record: ResultRecord
    }

    /// The tasks to end and how; reads only the records of dependencies that explain a skip.
    func endings() throws(GridError) -> [Ending] {
        let index = try connection.dependencies(of: snapshot)
        guard !index.graph.nodes.isEmpty else { return [] }
        let verdicts = finishing.isEmpty ? index.final
            : index.graph.finalVerdicts(standing: DependencyIndex.standing(in: snapshot),
                                        finishing: finishing.mapValues(\.status))
        var endings: [Ending] = []
        // Why each task decided here ended, and, for a skip, the failure at the root of its chain.
        var causes: [String: Cause] = [:]
        let node = connection.settings.nodeID
        for (id, verdict) in verdicts {
            // A task with a claim or a result of its own is its worker's to end.
            guard snapshot.claims[id] == nil, snapshot.results[id] == nil, finishing[id] == nil else { continue }
            switch verdict {
            case .reject(let why):
                causes[id] = Cause(skipped: false, line: why, root: "\(id) was rejected: \(why)")
                endings.append(Ending(taskID: id, destination: LedgerLayout.rejectedPath(taskID: id),
                                      record: record(id, status: .rejected, reason: why)))
            case .skip(let because):
                var parts: [String] = [], root: String?
                for dependency in because.prefix(5) {
                    let how = try describe(dependency, causes: causes)
                    parts.append("\(dependency) \(how.text)")
                    root = root ?? how.root
                }
                if because.count > 5 { parts.append("and \(because.count - 5) more") }
                let line = because.count == 1 ? "dependency \(parts[0])" : "no dependency succeeded: " + parts.joined(separator: "; ")
                causes[id] = Cause(skipped: true, line: line, root: root ?? line)
                endings.append(Ending(taskID: id, destination: LedgerLayout.failedPath(node: node, taskID: id),
                                      record: record(id, status: .skipped, reason: line)))
            case .ready, .waiting:
                continue
            }
        }
        return endings
    }

    /// How a dependency ended, in words: "failed: exit 2", "was skipped (…)".
    /// Why a task decided in this fold ends: its record's line, and the failure its chain of skips goes back to.
    private struct Cause {
        let skipped: Bool
        let line: String
        let root: String
    }

    private func describe(_ id: String, causes: [String: Cause]) throws(GridError) -> (text: String, root: String?) {
        if let cause = causes[id] {
            return cause.skipped ? ("was skipped (\(cause.root))", cause.root) : ("was rejected: \(cause.line)", cause.root)
        }
        let record: ResultRecord?
        if let finishing = finishing[id] {
            record = finishing
        } else if let bytes = try? connection.foldedRecord(of: id, in: snapshot) {
            record = ResultRecord.parse(bytes)
        } else {
            record = nil
        }
        guard let record else {
            let status = snapshot.finishedStatus(of: id).map(\.rawValue) ?? "unfinished"
            return ("ended \(status)", nil)
        }
        let text = Self.words(record)
        return (text, record.status == .skipped ? nil : "\(id) \(text)")
    }

    /// A record's ending in a few words; a reason written by the task's
    /// worker or a writer is shown as one capped, escaped line.
    static func words(_ record: ResultRecord) -> String {
        let line = UntrustedText.shown(String(record.stderr.split(separator: "\n", omittingEmptySubsequences: true).first ?? ""), limit: 200)
        switch record.status {
        case .completed: return "completed"
        case .rejected: return "was rejected: \(line)"
        case .skipped: return "was skipped (\(line))"
        case .failed:
            if record.timedOut { return "failed: timed out" }
            if record.oomKilled { return "failed: killed for memory (OOM)" }
            if let signal = record.signal { return "failed: killed by signal \(signal)" }
            return "failed: exit \(record.exitCode)"
        }
    }

    private func record(_ id: String, status: ResultStatus, reason: String) -> ResultRecord {
        let now = ISOTime.string(Date())
        return ResultRecord(taskID: id, nodeID: connection.settings.nodeID, exitCode: 125, stderr: reason + "\n", timestamp: now,
                            status: status, startedAt: now, finishedAt: now, stderrBytes: UInt64(reason.utf8.count + 1),
                            attempt: 0, workerVersion: RunnerInfo.workerVersion)
    }
}
