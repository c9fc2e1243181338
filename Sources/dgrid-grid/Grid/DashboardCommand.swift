import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `dgrid dashboard` (docs/ARCHITECTURE.md §12): a static site of the grid, built from the ledger.
struct GridDashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard", abstract: VerbAbstract.gridDashboard,
        discussion: """
            Writes index.html (one page: no script, no external font, style or image; readable on a phone) and \
            dashboard.json (the numbers the page shows) into DIR: the queue by priority, running tasks with node, \
            lease and progress, recent completions and failures with the end of their output, nodes with health, \
            Git circuit, last heartbeat, slots and reputation (when a node record carries one), quotas in use, this host's recent audit events, and the dependency graph \
            (SVG). Publish DIR as it is on any static host. The site is built beside DIR and swapped in whole, so \
            a web server serving DIR never serves half of one; DIR must be new, empty, or a site this command wrote. \
            Every list is cut (the page says how many more and which command lists them) and every value from the \
            grid escaped, so the page stays under a few MiB whatever the grid holds.
            """)

    @OptionGroup var grid: GridOptions

    @Option(name: .long, help: ArgumentHelp("The directory to publish the site in: new, empty, or written by dgrid dashboard before.", valueName: "DIR"))
    var out: String

    @Flag(name: .long, help: "Count quotas as a worker started with --allow-unsigned would.")
    var allowUnsigned = false

    @Flag(name: .long, help: "Leave out this host's audit events (the page may be public; they are this host's).")
    var noAudit = false

    func run() throws {
        let started = Date()
        let connection = grid.connect()
        let trust: DashboardReader.Trust
        do {
            trust = .host(try HostTrust.load(state: connection.settings.state), allowUnsigned: allowUnsigned)
        } catch {
            trust = .unavailable("\(error)")
        }
        let audit = noAudit ? nil : AuditLog.recent(path: connection.settings.state.path + "/" + AuditLog.fileName, count: DashboardLimits.standard.auditRows)
        let numbers: DashboardNumbers
        do {
            let dashboard = try DashboardReader(connection: connection).read(trust: trust, audit: audit)
            numbers = try DashboardSite.publish(dashboard, at: out)
        } catch {
            ImageCLI.fail(error)
        }
        let seconds = Date().timeIntervalSince(started)
        print("dashboard of grid \(numbers.gridID ?? "(no id)") written to \(out): \(numbers.pageBytes) bytes of \(DashboardSite.page) "
              + "(queued \(numbers.queued), running \(numbers.running), completed \(numbers.completed), failed \(numbers.failed), nodes \(numbers.nodes)) "
              + "in \(String(format: "%.2f", seconds)) s")
    }
}
