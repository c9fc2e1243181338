import ArgumentParser
import DGridCLI
import Foundation
import Logging
import Prometheus
import Runner
import Sandbox

/// `dgrid metrics`: grid-wide figures from the ledger and a scaling
/// recommendation (docs/ARCHITECTURE.md §12); with `--watch`, again every
/// interval, and changes as signed webhooks.
struct GridMetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: VerbAbstract.gridMetrics,
        discussion: """
        Figures: tasks waiting by priority and how many are ready, the oldest waiting task's age, running tasks, tasks finished in the window and per minute, observed task durations, live and offline nodes, each principal's use. \
        Scaling: workers_wanted = ceil(ceil((waiting + running) / max(1, floor(target / mean_duration))) / slots_per_worker), clamped to --min-workers and --max-workers, against the live healthy workers: scale_up, scale_down or hold (the JSON carries every input). \
        --watch prints one report per --interval (one JSON object per line with --json) and, with --webhook, POSTs scale.up, scale.down, node.offline, node.unhealthy and node.healthy events signed with HMAC-SHA256 (X-DGrid-Signature: sha256=<hex>; key from --webhook-secret-file or $DGRID_WEBHOOK_SECRET).
        """)

    @OptionGroup var grid: GridOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @Flag(name: .long, help: "Print Prometheus' text format (for a node exporter's textfile collector, or a scrape through a wrapper).")
    var prometheus = false

    @Option(name: .long, help: ArgumentHelp("Throughput and observed durations look back this far: 300, 90s, 15m, 2h (default 15m).", valueName: "AGE"))
    var window: String = "15m"

    @Option(name: .long, help: ArgumentHelp("The queue should drain within this (default 10m).", valueName: "AGE"))
    var target: String = "10m"

    @Option(name: .long, help: ArgumentHelp("A node whose last heartbeat is older is offline (default 2m).", valueName: "AGE"))
    var offlineAfter: String = "2m"

    @Option(name: .long, help: ArgumentHelp("The duration assumed while no task has finished (default 60s).", valueName: "AGE"))
    var assumeDuration: String = "60s"

    @Option(name: .long, help: "Never recommend fewer workers (default 0).")
    var minWorkers: Int = 0

    @Option(name: .long, help: "Never recommend more workers.")
    var maxWorkers: Int?

    @Flag(name: .long, help: "Report again every --interval until stopped (SIGTERM, SIGINT).")
    var watch = false

    @Option(name: .long, help: ArgumentHelp("With --watch: seconds between reports (default 30s).", valueName: "AGE"))
    var interval: String = "30s"

    @Option(name: .long, help: ArgumentHelp("With --watch: POST signed events to this http(s) URL.", valueName: "URL"))
    var webhook: String?

    @Option(name: .long, help: ArgumentHelp("The HMAC-SHA256 key for --webhook, in a file only this user can read; else $DGRID_WEBHOOK_SECRET.", valueName: "FILE"))
    var webhookSecretFile: String?

    /// `600`, `90s`, `15m`, `2h`: seconds, as a number or an age.
    static func seconds(_ text: String) -> Double? {
        if let number = Double(text), number.isFinite, number >= 0 { return number }
        return AgeText.seconds(text)
    }

    func validate() throws {
        if json && prometheus { throw ValidationError("--json and --prometheus: choose one") }
        if watch && prometheus { throw ValidationError("--prometheus prints one report; --watch prints text or JSON lines") }
        if webhook != nil && !watch { throw ValidationError("--webhook needs --watch: events are changes between reports") }
        for (flag, value) in [("--window", window), ("--target", target), ("--offline-after", offlineAfter), ("--assume-duration", assumeDuration),
                              ("--interval", interval)] {
            guard let seconds = Self.seconds(value), seconds > 0 else {
                throw ValidationError("\(flag) \(UntrustedText.quoted(value)): give seconds or an age such as 90s, 15m, 2h")
            }
        }
        if minWorkers < 0 { throw ValidationError("--min-workers must be 0 or more") }
        if let maxWorkers, maxWorkers < max(1, minWorkers) { throw ValidationError("--max-workers must be at least 1 and at least --min-workers") }
        if let webhook { do { _ = try WebhookURL(parsing: webhook) } catch { throw ValidationError("\(error)") } }
    }

    var options: GridMetrics.Options {
        var options = GridMetrics.Options()
        options.windowSeconds = Self.seconds(window) ?? options.windowSeconds
        options.targetSeconds = Self.seconds(target) ?? options.targetSeconds
        options.offlineAfterSeconds = Self.seconds(offlineAfter) ?? options.offlineAfterSeconds
        options.assumedDurationSeconds = Self.seconds(assumeDuration) ?? options.assumedDurationSeconds
        options.minWorkers = minWorkers
        options.maxWorkers = maxWorkers
        return options
    }

    func run() throws {
        let dispatcher = webhookDispatcher()
        let trust = HostTrustLoader.load()
        let connection = grid.connect()
        let metrics = GridMetrics(connection: connection)
        // Per-principal usage as a worker here counts it; unsigned tasks under (unsigned).
        func check() throws(GridError) -> TaskSignatureCheck {
            TaskSignatureCheck(trust: try HostTrustLoader.onGrid(trust, connection: connection), allowUnsigned: true,
                               defaultImage: connection.settings.defaultImage)
        }
        guard watch else {
            let report: GridMetrics.Report
            do {
                report = try metrics.report(options: options, check: try check())
            } catch {
                ImageCLI.fail(error)
            }
            if json {
                print(ImageCLI.json(report))
            } else if prometheus {
                print(GridMetricsExposition.text(report), terminator: "")
            } else {
                print(Self.text(report), terminator: "")
            }
            return
        }
        let stop = WatchStop()
        let signals = StopSignals { stop.request() }
        defer { withExtendedLifetime(signals) {} }
        var watcher = GridWatch()
        let pause = Self.seconds(interval) ?? 30
        while !stop.requested {
            do {
                let report = try metrics.report(options: options, check: try check())
                // Unbuffered: a pipe reader sees each round as it is made.
                let line = json ? UntrustedText.jsonSafe(String(decoding: (try? Self.compactEncoder.encode(report)) ?? Data("{}".utf8), as: UTF8.self))
                    : Self.line(report)
                FileDescriptorWriter.write(Array((line + "\n").utf8), to: STDOUT_FILENO)
                for event in watcher.events(for: report) { dispatcher?.send(event) }
            } catch {
                // The grid may be away for a while: say so and try again next round.
                ImageCLI.note("\(error)")
            }
            stop.wait(seconds: pause)
        }
        dispatcher?.flush(timeoutSeconds: WorkerTelemetry.flushSeconds)
        dispatcher?.stop()
    }

    static let compactEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// The dispatcher for `--webhook`; a missing or unusable secret ends the command here.
    func webhookDispatcher() -> WebhookDispatcher? {
        let secretFile = webhookSecretFile.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
        let secret: WebhookSecret?
        do {
            secret = try WebhookSecret.load(file: webhook == nil ? nil : secretFile)
        } catch {
            ImageCLI.fail(error)
        }
        guard let webhook, let url = try? WebhookURL(parsing: webhook) else { return nil }
        guard let secret else { ImageCLI.fail(WebhookSecretError.missing) }
        let logger = Logger(label: "dgrid.metrics")
        let dispatcher = WebhookDispatcher(url: url, secret: secret, logger: logger)
        dispatcher.start()
        return dispatcher
    }

    static func age(_ seconds: Double) -> String {
        seconds < 120 ? "\(Int(seconds.rounded())) s" : seconds < 7_200 ? "\(Int((seconds / 60).rounded())) min" : String(format: "%.1f h", seconds / 3_600)
    }

    /// The report for a terminal.
    static func text(_ report: GridMetrics.Report) -> String {
        let queue = report.queue
        let priorities = TaskPriority.allCases.compactMap { p in queue.byPriority[p.rawValue].flatMap { $0 > 0 ? "\(p.rawValue) \($0)" : nil } }
        var out = "waiting \(queue.waiting)" + (priorities.isEmpty ? "" : " (" + priorities.joined(separator: ", ") + ")")
            + ", ready \(queue.ready), on dependencies \(queue.waitingOnDependencies)"
        if let age = queue.oldestWaitingSeconds, let id = queue.oldestTask { out += "; oldest \(UntrustedText.shown(id, limit: 64)), waiting \(Self.age(age))" }
        out += "\nrunning \(report.running)\n"
        let t = report.throughput
        out += "finished in the last \(Self.age(t.windowSeconds)): \(t.finished) (completed \(t.completed), failed \(t.failed), rejected \(t.rejected)), "
            + String(format: "%.2f per minute\n", t.perMinute)
        let d = report.durations
        out += String(format: "task duration (%@, %d samples): mean %.1f s", d.source, d.samples, d.meanSeconds)
            + (d.p50Seconds.map { String(format: ", p50 %.1f s", $0) } ?? "") + (d.p90Seconds.map { String(format: ", p90 %.1f s", $0) } ?? "") + "\n"
        let n = report.nodes
        out += "nodes: \(n.live) live (\(n.unhealthy) unhealthy, \(n.liveSlots) healthy slots), \(n.offline) offline\n"
        for usage in report.principals {
            out += "principal \(UntrustedText.shown(usage.principal, limit: 64)): running \(usage.running), queued \(usage.queued), started in the last hour \(usage.startedLastHour)\n"
        }
        let s = report.scaling
        out += "scaling: \(s.action.rawValue): \(s.workersWanted) workers wanted, \(s.workersLive) live (target \(Self.age(s.targetSeconds)), "
            + String(format: "mean task %.1f s, %.1f slots per worker, %d tasks per slot)\n", s.meanDurationSeconds, s.slotsPerWorker, s.tasksPerSlot)
        return out
    }

    /// One line per `--watch` round.
    static func line(_ report: GridMetrics.Report) -> String {
        let s = report.scaling
        return "\(report.time) waiting=\(report.queue.waiting) ready=\(report.queue.ready) running=\(report.running) "
            + String(format: "per_minute=%.2f mean_s=%.1f ", report.throughput.perMinute, report.durations.meanSeconds)
            + "nodes_live=\(report.nodes.live) nodes_offline=\(report.nodes.offline) workers_wanted=\(s.workersWanted) action=\(s.action.rawValue)"
    }
}

/// SIGTERM or SIGINT during `--watch`: finish the round, flush, exit.
final class WatchStop: @unchecked Sendable {
    private let condition = NSCondition()
    private var stopped = false

    var requested: Bool { condition.withLock { stopped } }

    func request() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }

    func wait(seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        condition.withLock {
            while !stopped { guard condition.wait(until: deadline) else { return } }
        }
    }
}
