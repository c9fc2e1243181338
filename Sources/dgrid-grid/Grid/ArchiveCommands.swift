import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `dgrid archive` (docs/ARCHITECTURE.md §10).
struct GridArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive", abstract: VerbAbstract.gridArchive,
        discussion: """
            Folded records finished before the cutoff move from tasks/completed, failed and rejected into day \
            bundles under archive/bundles/ (tar.gz), with an index under archive/index/ that `dgrid result`, \
            `dgrid results`, dependencies and replay checks read. One commit on main; a fold or submission racing \
            it makes it plan again. At most \(GridArchive.maxPerRun) tasks per run.
            """)

    @OptionGroup var grid: GridOptions

    @Option(name: .customLong("older-than"), help: ArgumentHelp("Archive records that finished longer ago than this: 90s, 30m, 12h, 7d, 2w.", valueName: "AGE"))
    var olderThan: String

    func validate() throws {
        guard AgeText.seconds(olderThan) != nil else {
            throw ValidationError("--older-than '\(olderThan)' is not an age: a whole number and a unit (s, m, h, d, w), e.g. 7d")
        }
    }

    func run() throws {
        let connection = grid.connect()
        do {
            let summary = try GridArchive(connection: connection).run(olderThan: AgeText.seconds(olderThan) ?? 0) { line in
                ImageCLI.note(line)
            }
            print(summary)
            for bundle in summary.bundles { print("  \(bundle)") }
        } catch {
            ImageCLI.fail(error)
        }
    }
}

/// `dgrid compact` (docs/ARCHITECTURE.md §10).
struct GridCompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact", abstract: VerbAbstract.gridCompact,
        discussion: """
            main starts anew from a root commit with the same files; its history is kept under \
            \(GridCompaction.historyPrefix)main-<time>, which workers never fetch. New workers then download \
            main's files, not every fold ever made. Clones made before must fetch and reset \
            (`git fetch origin && git reset --hard origin/main`): their old main is refused as a non-fast-forward, \
            so nothing they push is lost. Workers compact on their own (compact_after_commits).
            """)

    @OptionGroup var grid: GridOptions

    @Option(name: .customLong("min-commits"), help: ArgumentHelp("Only when main has at least this many commits.", valueName: "N"))
    var minimumCommits = 2

    func run() throws {
        let connection = grid.connect()
        do {
            print(try GridCompaction(connection: connection).run(minimumCommits: minimumCommits))
        } catch {
            ImageCLI.fail(error)
        }
    }
}

/// `dgrid results` (docs/ARCHITECTURE.md §10).
struct GridResultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results", abstract: VerbAbstract.gridResults,
        discussion: "Newest first. Each page ends with the --before value of the next; archived and not-yet-folded results are listed too.")

    @OptionGroup var grid: GridOptions

    @Option(name: .long, help: ArgumentHelp("Only results that finished at or after this: an ISO-8601 time or an age (12h, 7d).", valueName: "TIME"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("The next page: what the previous page printed.", valueName: "CURSOR"))
    var before: String?

    @Option(name: .long, help: ArgumentHelp("Only this status: \(ResultStatus.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "S"))
    var status: String?

    @Option(name: .long, help: ArgumentHelp("Results per page.", valueName: "N"))
    var limit = 50

    @Flag(name: .long, help: "Print JSON: {results, total, next}.")
    var json = false

    func validate() throws {
        if let since, Self.time(since) == nil {
            throw ValidationError("--since '\(since)' is neither an ISO-8601 time (2026-12-01T00:00:00Z) nor an age (12h, 7d)")
        }
        if let before, ResultListing.Cursor(before) == nil {
            throw ValidationError("--before '\(before)' is not a cursor a page printed (TIME/TASK_ID)")
        }
        if let status, ResultStatus(rawValue: status) == nil {
            throw ValidationError("--status '\(status)' is not one of \(ResultStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    static func time(_ text: String) -> Date? {
        ISOTime.parse(text) ?? AgeText.seconds(text).map { Date().addingTimeInterval(-$0) }
    }

    func run() throws {
        let connection = grid.connect()
        let page: ResultListing.Page
        do {
            page = try ResultListing(connection: connection).page(
                since: since.flatMap(Self.time), before: before.flatMap(ResultListing.Cursor.init),
                status: status.flatMap(ResultStatus.init(rawValue:)), limit: limit)
        } catch {
            ImageCLI.fail(error)
        }
        if json {
            print(ImageCLI.json(page))
            return
        }
        func shown(_ text: String) -> String { UntrustedText.shown(text, limit: 80) }
        for item in page.results {
            let place = item.place == "main" ? "" : " (\(item.place))"
            print("\(shown(item.finishedAt.isEmpty ? "-" : item.finishedAt))  \(item.status.padding(toLength: 9, withPad: " ", startingAt: 0)) exit \(item.exitCode)  \(shown(item.taskID)) on \(shown(item.nodeID.isEmpty ? "-" : item.nodeID))\(place)")
        }
        if page.results.isEmpty { ImageCLI.note("no results\(before == nil ? "" : " past this cursor")") }
        if let next = page.next {
            ImageCLI.note("\(page.results.count) shown of \(page.total); next page: dgrid results --before '\(next)'"
                          + (status.map { " --status \($0)" } ?? "") + (since.map { " --since '\($0)'" } ?? ""))
        } else {
            ImageCLI.note("\(page.total) result\(page.total == 1 ? "" : "s")")
        }
    }
}
