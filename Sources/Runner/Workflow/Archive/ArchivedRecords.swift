/// Reading a finished task's record wherever main keeps it (docs/ARCHITECTURE.md §10):
/// beside its task file in `completed/`, `failed/` or `rejected/`, or, once
/// archived, inside the bundle its index line names.
extension GridConnection {
    /// The largest bundle read: 10,000 records of a few KB each, compressed.
    static let bundleLimit = 256 << 20

    /// The record bytes of finished task `taskID`; nil when main shows it unfinished.
    /// An archived record that cannot be read (bundle gone or corrupt) throws, in one line.
    func foldedRecord(of taskID: String, in snapshot: GridSnapshot, limit: Int = 4 << 20) throws(GridError) -> [UInt8]? {
        if let blob = snapshot.foldedLogs(of: taskID).first { return try self.blob(blob, limit: limit) }
        guard let entry = snapshot.archived(taskID) else { return nil }
        return try archivedRecord(entry, in: snapshot)
    }

    /// The record of an archived task, out of its bundle.
    func archivedRecord(_ entry: ArchiveEntry, in snapshot: GridSnapshot) throws(GridError) -> [UInt8] {
        let member = LedgerLayout.logPath(for: entry.recordPath)
        let what = "task \(entry.taskID)'s archived record (\(member) in \(entry.bundle))"
        guard let blob = snapshot.files[entry.bundle] else {
            throw .local("\(what): main has no \(entry.bundle), which the archive index names; "
                         + "restore it from the history kept under \(GridCompaction.historyPrefix)")
        }
        let members: [String: [UInt8]]
        do {
            members = try ArchiveBundle.read(try self.blob(blob, limit: Self.bundleLimit)) { $0 == member }
        } catch let failure as ArchiveBundle.Failure {
            throw .local("\(what): the bundle is corrupt (\(failure)); restore it from the history kept under \(GridCompaction.historyPrefix)")
        } catch let error as GridError {
            throw error
        } catch {
            throw .local("\(what): \(error)")
        }
        guard let record = members[member] else {
            throw .local("\(what): the bundle holds no such member; the index line or the bundle was changed by hand")
        }
        return record
    }
}
