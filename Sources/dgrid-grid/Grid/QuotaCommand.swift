import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `dgrid quota`: each principal's use of the grid against this host's policy
/// (docs/ARCHITECTURE.md §9), counted from the ledger as a worker counts it.
struct GridQuotaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quota", abstract: VerbAbstract.gridQuota,
        discussion: "Principals are those of this host's trust/allowed_signers, verified from each task's .sig; limits are trust/policy.toml's. Unsigned tasks count as (unsigned) where this host lets them run.")

    @OptionGroup var grid: GridOptions

    @Flag(name: .long, help: "Check as a worker started with --allow-unsigned would.")
    var allowUnsigned = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        let trust = HostTrustLoader.load()
        let connection = grid.connect()
        let report: GridQuota.Report
        do {
            let effective = try HostTrustLoader.onGrid(trust, connection: connection)
            report = try GridQuota(connection: connection).report(check: TaskSignatureCheck(trust: effective, allowUnsigned: allowUnsigned,
                                                                                             defaultImage: connection.settings.defaultImage))
        } catch {
            ImageCLI.fail(error)
        }
        if json {
            print(ImageCLI.json(report))  // jsonSafe: principals' names are shown inert
            return
        }
        func limit(_ value: Int?) -> String { value.map { "/\($0)" } ?? "" }
        print("grid: running \(report.running)\(limit(report.maxConcurrent)), queued \(report.queued)\(limit(report.maxQueue))"
              + (report.maxSubmissionsPerMinute.map { ", submissions at most \($0) per minute" } ?? ""))
        if report.principals.isEmpty { print("no principals: no signed task on the grid, and none named in trust/policy.toml") }
        for usage in report.principals {
            var line = "\(UntrustedText.shown(usage.principal, limit: 64)): running \(usage.running)\(limit(usage.maxConcurrentTasks)), "
                + "queued \(usage.queued)\(limit(usage.maxQueuedTasks)), started in the last hour \(usage.startedLastHour)\(limit(usage.maxTasksPerHour))"
            if let waiting = usage.waiting { line += " — waiting: \(waiting)" }
            print(line)
        }
    }
}
