import Foundation

/// `dgrid results` (docs/ARCHITECTURE.md §10): finished tasks newest first, a page
/// at a time, from main's folders, the archive index (no bundle opened) and
/// results published but not folded yet. A page ends with a cursor; the next
/// page is everything strictly older than it, so paging never repeats or skips
/// a task however many finish meanwhile.
public struct ResultListing {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public struct Item: Sendable, Codable, Equatable {
        public var taskID: String
        public var status: String
        public var exitCode: Int32
        public var finishedAt: String
        public var nodeID: String
        /// Where it is: "main" (a folder), "archive" (a bundle), "unfolded" (its result ref).
        public var place: String

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id", status, exitCode = "exit_code", finishedAt = "finished_at", nodeID = "node_id", place
        }
    }

    public struct Page: Sendable, Codable, Equatable {
        public var results: [Item]
        /// Finished tasks that match the filters, on every page.
        public var total: Int
        /// Give it as `--before` for the next page; nil on the last.
        public var next: String?
    }

    /// A position in the listing's order: `<finished at>/<task id>`.
    public struct Cursor: Sendable, Equatable {
        let time: Date
        let taskID: String

        public init?(_ text: String) {
            guard let slash = text.lastIndex(of: "/"), let time = ISOTime.parse(String(text[..<slash])) else { return nil }
            let id = String(text[text.index(after: slash)...])
            guard TaskParser.isValidTaskID(id) else { return nil }
            self.time = time
            taskID = id
        }

        init(time: Date, taskID: String) {
            self.time = time
            self.taskID = taskID
        }

        var text: String { "\(ISOTime.string(time))/\(taskID)" }
    }

    public func page(since: Date? = nil, before: Cursor? = nil, status: ResultStatus? = nil, limit: Int = 50) throws(GridError) -> Page {
        try page(in: try connection.snapshot(), since: since, before: before, status: status, limit: limit)
    }

    /// A page of one listing (the dashboard reads every section from the same one).
    func page(in snapshot: GridSnapshot, since: Date? = nil, before: Cursor? = nil, status: ResultStatus? = nil, limit: Int = 50) throws(GridError) -> Page {
        guard snapshot.mainTip != nil else { throw .notInitialised(repository: connection.repositoryInUse) }
        var items: [(time: Date, item: Item)] = []
        var seen: Set<String> = []
        func add(_ item: Item) {
            guard seen.insert(item.taskID).inserted else { return }
            // A time no one can read sorts as the oldest, never drops the task.
            items.append((ISOTime.parse(item.finishedAt) ?? .distantPast, item))
        }
        for (taskID, paths) in snapshot.index.finishedPathsByTask {
            let (recordPath, blob) = snapshot.deciding(paths)
            let record = blob.flatMap { try? connection.blob($0, limit: 4 << 20) }.flatMap(ResultRecord.parse)
            let folder = snapshot.finishedStatus(of: taskID) ?? .failed
            add(Item(taskID: taskID, status: (record?.taskID == taskID ? record?.status : nil)?.rawValue ?? folder.rawValue,
                     exitCode: record?.exitCode ?? 0, finishedAt: record?.finishedAt ?? "",
                     nodeID: record?.nodeID ?? GridSnapshot.nodeAndTask(recordPath, under: GridSnapshot.finishedDirectories)?.node ?? "",
                     place: "main"))
        }
        for entry in snapshot.index.finishedTaskIDs.archive.allEntries() {
            add(Item(taskID: entry.taskID, status: entry.status.rawValue, exitCode: entry.exitCode, finishedAt: entry.finishedAt,
                     nodeID: entry.nodeID, place: "archive"))
        }
        let unfolded = snapshot.results.filter { !snapshot.finishedTaskIDs.contains($0.key) }
        try connection.prefetch(Array(unfolded.values))
        for (taskID, commit) in unfolded {
            // The record only: the task file beside it is not needed here.
            guard let bytes = try? connection.file("result.json", of: commit, limit: 4 << 20),
                  let record = ResultRecord.parse(bytes), record.taskID == taskID else { continue }
            add(Item(taskID: taskID, status: record.status.rawValue, exitCode: record.exitCode,
                     finishedAt: record.finishedAt, nodeID: record.nodeID, place: "unfolded"))
        }

        var matching = items.filter { entry in
            (status.map { entry.item.status == $0.rawValue } ?? true) && (since.map { entry.time >= $0 } ?? true)
        }
        let total = matching.count
        matching.sort { ($0.time, $0.item.taskID) > ($1.time, $1.item.taskID) }
        if let before {
            matching.removeAll { ($0.time, $0.item.taskID) >= (before.time, before.taskID) }
        }
        let shown = Array(matching.prefix(max(0, limit)))
        let next = matching.count > shown.count ? shown.last.map { Cursor(time: $0.time, taskID: $0.item.taskID).text } : nil
        return Page(results: shown.map(\.item), total: total, next: next)
    }
}
