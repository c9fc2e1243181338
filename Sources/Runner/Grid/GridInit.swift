/// `dgrid init`: gives an empty repository the D-GRID layout on main, so
/// D-GRID's own tools find their directories, and points the repository's
/// HEAD at main where it can, so `git clone` checks the grid out
/// (`RemoteHead`), and fixes the grid's id (`GridID`, `.dgrid/grid.json`).
/// Idempotent: an initialised grid is left as it is, apart from a HEAD that
/// still names an unborn branch and a grid made elsewhere (D-GRID's own
/// tools) that has no id yet: it gets one, in one commit on main.
public struct GridInit {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public struct Outcome: Equatable, Sendable {
        /// Whether main was created now (false: it existed).
        public var created: Bool
        public var head: RemoteHead
        public var gridID: GridID
        /// Whether the id was given now to a grid that existed without one.
        public var gridIDAdded: Bool
    }

    public func run(attempts: Int = 8) throws(GridError) -> Outcome {
        let created = try createMain()
        let (gridID, added) = try ensureGridID(attempts: attempts)
        let head = try connection.withLedger { (ledger) throws(LedgerError) -> RemoteHead in
            try ledger.pointHead(at: GridConnection.mainRef)
        }
        return Outcome(created: created, head: head, gridID: gridID, gridIDAdded: added && !created)
    }

    /// Main's grid id, committing a new one when main has none (or one that
    /// does not parse: the file is then replaced, and says so in the commit).
    private func ensureGridID(attempts: Int) throws(GridError) -> (GridID, added: Bool) {
        for _ in 0..<attempts {
            let snapshot = try connection.snapshot()
            guard let main = snapshot.mainTip else { throw .notInitialised(repository: connection.repositoryInUse) }
            if let id = try GridIdentity.read(snapshot, connection: connection) { return (id, false) }
            let id = GridID.random()
            let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
                let commit = try ledger.commit(parent: main, changes: [LedgerChange(path: GridIDFile.path, content: GridIDFile.encode(id))],
                                               message: "dgrid init: grid id \(id)")
                return try ledger.updateRef(GridConnection.mainRef, from: main, to: commit)
            }
            if outcome == .applied { return (id, true) }
        }
        throw .contention(operation: "init (grid id)", attempts: attempts)
    }

    /// true when main was created, false when it existed.
    private func createMain() throws(GridError) -> Bool {
        let snapshot = try connection.snapshot()
        if snapshot.mainTip != nil { return false }
        let keep = ["tasks/queue", "tasks/in_progress", "tasks/completed", "tasks/failed", "tasks/rejected", "nodes"]
            .map { LedgerChange(path: $0 + "/.gitkeep", content: []) }
        let readme = LedgerChange(path: "README.md", content: Array("""
            # dgrid grid

            Tasks wait in `tasks/queue/`; workers (`dgrid worker --repo URL`) claim them through
            `refs/dgrid/claims/*` and publish results to `refs/dgrid/results/*`; folds move them to
            `tasks/in_progress/`, `tasks/completed/`, `tasks/failed/` or `tasks/rejected/` with a `.log`
            holding the result record. Node records live in `nodes/`.

            """.utf8))
        let gridID = LedgerChange(path: GridIDFile.path, content: GridIDFile.encode(GridID.random()))
        let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
            let commit = try ledger.commit(parent: nil, changes: keep + [readme, gridID], message: "dgrid init")
            return try ledger.createRef(GridConnection.mainRef, target: commit)
        }
        // Rejected: someone initialised it in between, which is what we wanted.
        return outcome == .applied
    }
}

/// Reads a grid's id from main.
enum GridIdentity {
    static func read(_ snapshot: GridSnapshot, connection: GridConnection) throws(GridError) -> GridID? {
        guard let blob = snapshot.files[GridIDFile.path] else { return nil }
        guard let bytes = try? connection.blob(blob, limit: 4096) else { return nil }
        return GridIDFile.decode(bytes)
    }
}
