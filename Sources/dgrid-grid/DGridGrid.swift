import ArgumentParser
import DGridCLI

/// `dgrid-grid`: the grid verbs (libgit2). Users run it through `dgrid`,
/// which execs it for them, so its command tree is named `dgrid` and its help
/// reads as `dgrid`'s. The registry verbs live in `dgrid-registry`: a
/// long-running worker carries no HTTP stack (idle RSS, docs/ARCHITECTURE.md §7).
@main
struct DGridGrid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dgrid",
        abstract: "dgrid's grid verbs (run through `dgrid`).",
        version: DGrid.version,
        subcommands: [GridInitCommand.self, GridSubmitCommand.self, GridWorkerCommand.self,
                      GridStatusCommand.self, GridResultCommand.self, GridFoldCommand.self,
                      GridSignCommand.self, GridVerifyCommand.self, GridAuditCommand.self, GridQuotaCommand.self, GridDagCommand.self,
                      GridResultsCommand.self, GridArchiveCommand.self, GridCompactCommand.self,
                      GridDoctorCommand.self, GridMetricsCommand.self, GridDashboardCommand.self, GridNodeCommand.self, GridReputationCommand.self]
    )

    static func main() {
        StandardStreams.ensureOpen()
        DGrid.run(Self.self)
    }
}
