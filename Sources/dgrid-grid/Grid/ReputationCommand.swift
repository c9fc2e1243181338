import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `dgrid reputation`: each node's record from the grid's signed history (docs/ARCHITECTURE.md §11).
struct GridReputationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reputation", abstract: VerbAbstract.gridReputation)

    @OptionGroup var grid: GridOptions

    @Flag(name: .long, help: "Print JSON, with how each figure is derived.")
    var json = false

    func run() throws {
        let connection = grid.connect()
        do {
            let state = connection.settings.state
            let trust = try WorkerTrust.load(state: state, trust: try HostTrust.load(state: state))
            let report = try NodeReputation(connection: connection, trust: trust).report { done, total in
                if total > 20, !json, done % 20 == 0 || done == total {
                    FileHandle.standardError.write(Data("reading archived records: \(done)/\(total) bundles\n".utf8))
                }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
                return
            }
            print(Self.table(report))
        } catch {
            ImageCLI.fail(error)
        }
    }

    static func table(_ report: NodeReputation.Report) -> String {
        let header = ["node", "accepted", "failures", "timeouts", "leases lost", "outvoted", "in a row", "error rate", "last result"]
        let rows = report.nodes.map { node in
            [node.nodeID, "\(node.accepted)", "\(node.failures)", "\(node.timeouts)", "\(node.leasesLost)", "\(node.outvoted)",
             "\(node.consecutiveValid)", String(format: "%.3f", node.errorRate), node.lastResultAt ?? "-"]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        var lines = ([header] + rows).map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        if report.nodes.isEmpty { lines.append("(no signed records on this grid)") }
        lines.append("not counted: \(report.unsigned) unsigned records, \(report.unverified) whose signature does not hold for their node (worker trust here: \(report.workerTrust))")
        lines.append("derived only from folded records signed by their node, as this host's trust decides (--json says how each figure is computed)")
        return lines.joined(separator: "\n")
    }
}
