/// `dgrid init`: gives an empty repository the D-GRID layout on main, so
/// D-GRID's own tools find their directories. Idempotent: an initialised
/// grid is left as it is.
public struct GridInit {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    /// true when main was created, false when it existed.
    public func run() throws(GridError) -> Bool {
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
        let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
            let commit = try ledger.commit(parent: nil, changes: keep + [readme], message: "dgrid init")
            return try ledger.createRef(GridConnection.mainRef, target: commit)
        }
        // Rejected: someone initialised it in between, which is what we wanted.
        return outcome == .applied
    }
}
