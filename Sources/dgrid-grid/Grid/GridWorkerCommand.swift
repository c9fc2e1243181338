import ArgumentParser
import DGridCLI
import Foundation
import Logging
import Runner
import Sandbox
import Synchronization

struct GridWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: VerbAbstract.gridWorker,
        discussion: """
        Settings: flags, then D-GRID's environment names (NODE_ID, DGRID_REPO_URL, PULL_INTERVAL, \
        HEARTBEAT_INTERVAL, MAX_PARALLEL_TASKS, LOG_LEVEL, DOCKER_CPUS, DOCKER_MEMORY), then defaults. \
        SIGTERM: stop claiming, let running tasks finish, fold, exit.
        """)

    @OptionGroup var grid: GridOptions

    @Option(name: .long, help: "This worker's node id: A-Z a-z 0-9 . _, no '-' (default $NODE_ID or node_<hostname>).")
    var nodeId: String?

    @Option(name: .long, help: "Parallel task slots (default $MAX_PARALLEL_TASKS or half the cores, bounded by memory).")
    var slots: Int?

    @Option(name: .long, help: "Seconds a silent worker keeps its claims (default 3× the heartbeat interval).")
    var lease: Double?

    @Flag(name: .long, help: "Drain what is claimable now, fold, and exit.")
    var once = false

    @Option(name: .long, help: "Stop after starting this many tasks.")
    var maxTasks: Int?

    @Option(name: .long, help: "text or json.")
    var logFormat: String = "text"

    @Flag(name: .long, help: "Rootless without a delegated cgroup: run tasks without memory, CPU and pids limits (logged per task).")
    var noCgroupLimits = false

    @Option(name: .long, help: "Seconds running tasks get after SIGTERM before their claims are released (default 30).")
    var grace: Double = 30

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        var settings = grid.settings(nodeID: nodeId)
        func seconds(_ name: String) -> Double? { environment[name].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } }
        settings.pollSeconds = seconds("PULL_INTERVAL") ?? settings.pollSeconds
        settings.heartbeatSeconds = seconds("HEARTBEAT_INTERVAL") ?? settings.heartbeatSeconds
        settings.leaseSeconds = lease ?? 3 * settings.heartbeatSeconds
        settings.runWithoutCgroupLimits = noCgroupLimits
        if let text = environment["DOCKER_MEMORY"] {
            do { settings.defaultMemoryBytes = try ByteCount(parsing: text).bytes } catch { ImageCLI.fail(error) }
        }
        if let text = environment["DOCKER_CPUS"] {
            guard let cpus = Double(text), cpus > 0 else { ImageCLI.fail(GridError.local("DOCKER_CPUS '\(text)' is not a positive number")) }
            settings.defaultCPUs = cpus
        }
        let requested = slots ?? environment["MAX_PARALLEL_TASKS"].flatMap(Int.init)
        settings.slots = Self.slots(requested: requested, memoryPerTask: settings.defaultMemoryBytes)
        guard settings.slots >= 1 else { ImageCLI.fail(GridError.local("--slots must be at least 1")) }

        let format = logFormat
        guard ["text", "json"].contains(format) else { ImageCLI.fail(GridError.local("--log-format: use text or json")) }
        let level = Logger.Level(rawValue: environment["LOG_LEVEL"]?.lowercased() ?? "info") ?? .info
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, json: format == "json")
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "dgrid.worker")
        let connection: GridConnection
        do {
            connection = try GridConnection(settings: settings)
        } catch {
            ImageCLI.fail(error)
        }
        var options = GridWorker.Options()
        options.once = once
        options.maxTasks = maxTasks
        let worker = GridWorker(connection: connection, options: options, logger: logger)
        let graceSeconds = max(0, grace)
        let stopSignals = StopSignals { worker.stop(graceSeconds: graceSeconds) }
        defer { withExtendedLifetime(stopSignals) {} }
        do {
            let summary = try worker.run()
            logger.info("worker stopped", metadata: ["completed": "\(summary.completed)", "failed": "\(summary.failed)",
                                                     "rejected": "\(summary.rejected)", "released": "\(summary.released)",
                                                     "abandoned": "\(summary.abandoned)"])
            // Tasks cut off by the grace period: the exit of a process ended by SIGTERM.
            if summary.abandoned > 0 { throw ExitCode(128 + SIGTERM) }
            // A drain that ended on a host fault ran what it could and gave the rest back: say so in the status.
            if once, let reason = summary.unhealthy {
                throw GridError.local("this worker is unhealthy and gave its claims back: \(reason)")
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            ImageCLI.fail(error)
        }
    }

    /// Half the cores by default, never more than memory allows at the per-task limit.
    static func slots(requested: Int?, memoryPerTask: UInt64?) -> Int {
        if let requested { return requested }
        let byCores = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        guard let memoryPerTask, memoryPerTask > 0 else { return byCores }
        let byMemory = Int(ProcessInfo.processInfo.physicalMemory / 2 / memoryPerTask)
        return max(1, min(byCores, byMemory))
    }
}

/// SIGTERM and SIGINT stop the worker gracefully, through dispatch sources
/// (the handler runs on a queue, not in signal context); handled for as long
/// as the value lives.
struct StopSignals {
    private let sources: [DispatchSourceSignal]

    init(_ stop: @escaping @Sendable () -> Void) {
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: stop)
            source.resume()
            return source
        }
    }
}
