/// Two backends' main that both moved since they last agreed (docs/ARCHITECTURE.md §11,
/// "Several backends"): both had writers during a failover. The merge keeps everything
/// either side did, decided task by task, and never counts a task twice:
/// - a path only one side changed since the common base takes that side's version
///   (new tasks queued on either, records folded on either, queue entries they removed);
/// - a path both changed differently keeps the authority's (`ours`) version;
/// - a task finished on both sides keeps the authority's record; the other side's
///   record goes to `tasks/late/` with a reason, as the fold keeps any second result:
///   not lost, and not a second finished file;
/// - a task finished on either side leaves the queue and `in_progress/` on the merge.
/// Pure: paths and blob ids in, the changes to make on `ours` out.
struct MainMerge {
    /// What to do with one path of `ours`' tree.
    enum Change: Equatable {
        case put(GitOID)
        case delete
    }

    /// A finished record of `theirs` kept under `tasks/late/` instead: where from, where to.
    struct Late: Equatable {
        let from: String
        let to: String
        let taskID: String
    }

    var changes: [String: Change] = [:]
    var late: [Late] = []

    static let lateDirectory = GridFold.lateDirectory

    /// `theirsLabel`: names the other side in late files (its tip, shortened), so merging the
    /// same tips again writes the same names.
    init(base: [String: GitOID], ours: [String: GitOID], theirs: [String: GitOID], theirsLabel: String) {
        var merged = ours
        // Paths their side changed since the base.
        for path in Set(base.keys).union(theirs.keys) where base[path] != theirs[path] {
            if ours[path] == base[path] {
                merged[path] = theirs[path]
            }
            // Both changed it: ours stands; a record of theirs is handled task by task below.
        }
        // Task by task: whose finished records, and which of theirs become late.
        var finishedOurs: [String: [String]] = [:], finishedMerged: [String: [String]] = [:]
        for path in ours.keys { if let id = GridSnapshot.finishedTaskID(path) { finishedOurs[id, default: []].append(path) } }
        for path in merged.keys { if let id = GridSnapshot.finishedTaskID(path) { finishedMerged[id, default: []].append(path) } }
        for (path, blob) in theirs where base[path] != blob {
            guard let id = GridSnapshot.finishedTaskID(path) else { continue }
            let oursHasIt = finishedOurs[id]?.isEmpty == false
            guard oursHasIt, ours[path] != blob else { continue }
            // A second finish of a task the authority finished too: kept as late, with its companions (.log, .log.sig).
            for companion in theirs.keys where companion == path || companion.hasPrefix(path + ".") {
                let name = companion.split(separator: "/").last.map(String.init) ?? companion
                let to = Self.lateDirectory + Self.lateName(name, label: theirsLabel)
                late.append(Late(from: companion, to: to, taskID: id))
                merged[to] = theirs[companion]
                if ours[companion] == nil { merged[companion] = nil }
            }
            finishedMerged[id] = finishedMerged[id]?.filter { ours[$0] != nil }
        }
        // A task finished on either side is neither queued nor in progress on the merge.
        for path in Array(merged.keys) {
            let taskID = LedgerLayout.queueEntry(path: path)?.taskID
                ?? GridSnapshot.nodeAndTask(path, under: [GridSnapshot.inProgressDirectory])?.taskID
            if let taskID, finishedMerged[taskID]?.isEmpty == false { merged[path] = nil }
        }
        for path in Set(ours.keys).union(merged.keys) where ours[path] != merged[path] {
            changes[path] = merged[path].map { .put($0) } ?? .delete
        }
        late.sort { $0.to < $1.to }
    }

    /// `<node>-<task>.json.log` → `<node>-<task>.reconciled-<label>.json.log`: the late name keeps
    /// the record's own name readable and says where it came from.
    static func lateName(_ name: String, label: String) -> String {
        guard let dot = name.firstIndex(of: ".") else { return name + ".reconciled-" + label }
        return name[..<dot] + ".reconciled-" + label + name[dot...]
    }

    /// The reason file beside each late record: why it is there.
    static func reason(_ late: Late, otherBackend: String) -> String {
        "task \(late.taskID) finished on two backends while they were apart (a failover); the authority's record "
            + "stands on main, and this one, from \(otherBackend), is kept here: a second run, not counted\n"
    }
}
