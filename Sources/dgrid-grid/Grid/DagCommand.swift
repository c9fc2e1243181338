import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `dgrid dag`: the grid's dependency graph with each task's state (docs/ARCHITECTURE.md §10).
struct GridDagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dag", abstract: VerbAbstract.gridDag,
        discussion: """
            Lists every task that names depends_on or is named by one, dependencies first: its state (ready, waiting, blocked, running, completed, failed, skipped, rejected, or missing: named but not on the grid), its dependencies and why it waits or will not run. With TASK, only that task, what it depends on and what depends on it. --dot writes Graphviz (dot -Tsvg), edges from a dependency to its dependent.
            """)

    @OptionGroup var grid: GridOptions

    @Argument(help: ArgumentHelp("Show only this task's part of the graph.", valueName: "TASK"))
    var task: String?

    @Flag(name: .long, help: "Print Graphviz dot.")
    var dot = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        if dot && json { throw ValidationError("--dot and --json: choose one") }
        if let task, !TaskParser.isValidTaskID(task) { throw ValidationError("\(UntrustedText.quoted(task)) is not a task id (1-128 characters of A-Z a-z 0-9 . _ -)") }
    }

    func run() throws {
        let report: GridDAG.Report
        do {
            report = try GridDAG(connection: grid.connect()).report(focus: task)
        } catch {
            ImageCLI.fail(error)
        }
        if json {
            print(ImageCLI.json(report))
        } else if dot {
            print(Self.dot(report), terminator: "")
        } else if report.tasks.isEmpty {
            print("no task on this grid names depends_on")
        } else {
            print(Self.text(report), terminator: "")
        }
    }

    /// One line per task: id, state, mode when not the default, dependencies, reason.
    static func text(_ report: GridDAG.Report) -> String {
        let width = min(40, report.tasks.map(\.id.count).max() ?? 0)
        var out = ""
        var counts: [GridDAG.State: Int] = [:]
        for task in report.tasks {
            counts[task.state, default: 0] += 1
            var line = task.id.padding(toLength: max(width, task.id.count), withPad: " ", startingAt: 0) + "  "
                + task.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
            if !task.dependsOn.isEmpty {
                let shown = task.dependsOn.prefix(8).joined(separator: ", ") + (task.dependsOn.count > 8 ? " and \(task.dependsOn.count - 8) more" : "")
                line += "  ← " + shown
                if let mode = task.dependencyMode, mode != DependencyMode.default.rawValue { line += " (\(mode))" }
            }
            if let reason = task.reason { line += "  — " + UntrustedText.shown(reason, limit: 240) }
            out += line + "\n"
        }
        let order: [GridDAG.State] = [.ready, .waiting, .blocked, .running, .completed, .failed, .skipped, .rejected, .missing]
        out += "\(report.tasks.count) tasks: " + order.compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }.joined(separator: ", ") + "\n"
        return out
    }

    /// Graphviz: one node per task, filled by state; an edge from each dependency to its dependent.
    static func dot(_ report: GridDAG.Report) -> String {
        var out = "digraph dgrid {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"sans-serif\"];\n"
        for task in report.tasks {
            // Task ids are [A-Za-z0-9._-]: safe inside dot's double quotes.
            out += "  \"\(task.id)\" [label=\"\(task.id)\\n\(task.state.rawValue)\", fillcolor=\"\(task.state.fill)\"];\n"
        }
        for task in report.tasks {
            for dependency in task.dependsOn { out += "  \"\(dependency)\" -> \"\(task.id)\";\n" }
        }
        return out + "}\n"
    }
}
