/// `dgrid init`: gives an empty repository the D-GRID layout on main, so
/// D-GRID's own tools find their directories, and points the repository's
/// HEAD at main where it can, so `git clone` checks the grid out
/// (`RemoteHead`). Idempotent: an initialised grid is left as it is, apart
/// from a HEAD that still names an unborn branch.
public struct GridInit {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public struct Outcome: Equatable, Sendable {
        /// Whether main was created now (false: it existed).
        public var created: Bool
        public var head: RemoteHead
    }

    public func run() throws(GridError) -> Outcome {
        let created = try createMain()
        let head = try connection.withLedger { (ledger) throws(LedgerError) -> RemoteHead in
            try ledger.pointHead(at: GridConnection.mainRef)
        }
        return Outcome(created: created, head: head)
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
        let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
            let commit = try ledger.commit(parent: nil, changes: keep + [readme], message: "dgrid init")
            return try ledger.createRef(GridConnection.mainRef, target: commit)
        }
        // Rejected: someone initialised it in between, which is what we wanted.
        return outcome == .applied
    }
}
