import ArgumentParser
import DGridCLI
import Foundation
import Logging
import Runner
import Sandbox
import Synchronization
import Trust

struct GridWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: VerbAbstract.gridWorker,
        discussion: """
        Settings, per key: flags, then environment (DGRID_<KEY>, or D-GRID's NODE_ID, PULL_INTERVAL, \
        HEARTBEAT_INTERVAL, MAX_PARALLEL_TASKS, LOG_LEVEL, DOCKER_CPUS, DOCKER_MEMORY), then the config file, \
        then defaults; --print-config shows the result. A bad value stops the worker (exit 78). \
        Every task must be signed by a key in $DGRID_HOME/trust/allowed_signers (see dgrid sign) unless \
        --allow-unsigned or trust/policy.toml says require_signatures = false; a task that fails the check is rejected. \
        SIGTERM: stop claiming, let running tasks finish, fold, exit.
        """)

    @OptionGroup var grid: GridOptions
    @OptionGroup var workerConfig: WorkerConfigOptions

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
    var grace: Double?

    @Option(name: .long, help: ArgumentHelp("Serve Prometheus metrics at http://ADDRESS/metrics, e.g. \(ListenAddress.suggested) (metrics_listen; keep it on loopback). A port in use is one line on stderr; the worker runs on.", valueName: "IP:PORT"))
    var metricsListen: String?

    @Option(name: .long, help: ArgumentHelp("POST signed JSON events (this node unhealthy or healthy again, security events) to this http(s) URL (webhook_url).", valueName: "URL"))
    var webhook: String?

    @Option(name: .long, help: ArgumentHelp("The HMAC-SHA256 key for --webhook, in a file only this user can read (webhook_secret_file); else $DGRID_WEBHOOK_SECRET.", valueName: "FILE"))
    var webhookSecretFile: String?

    @Flag(name: .long, help: "Run tasks that carry no signature (logged at start): anyone who can push to the grid then runs code here. Signed tasks are still checked. Also $DGRID_ALLOW_UNSIGNED=1.")
    var allowUnsigned = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let (config, file) = workerConfig.resolve(flags: dedicatedFlags, environment: environment)
        if workerConfig.printConfig {
            workerConfig.print(config, file: file)
            return
        }
        var settings = grid.settings(nodeID: config.nodeID)
        config.apply(to: &settings)
        settings.runWithoutCgroupLimits = noCgroupLimits

        let format = logFormat
        guard ["text", "json"].contains(format) else { ImageCLI.fail(GridError.local("--log-format: use text or json")) }
        let level = config.logLevel
        let journal = JournalStream.isConnected(journalStream: environment["JOURNAL_STREAM"])
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, json: format == "json", journal: journal)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "dgrid.worker")
        // Under systemd (Type=notify): readiness, status and watchdog pings (docs/ARCHITECTURE.md §12).
        let service = ServiceNotifier.fromEnvironment(environment) { problem in logger.warning("\(problem)") }
        ServiceNotifier.clearEnvironment()
        // Before the connection: its ledgers report every Git operation to the metrics.
        let telemetry: WorkerTelemetry
        do {
            telemetry = try WorkerTelemetry.start(config: config, nodeID: settings.nodeID, slots: settings.slots, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("dgrid: \(error)\n".utf8))
            throw ExitCode(WorkerConfigOptions.configErrorExitCode)
        }
        defer { telemetry.finish() }
        settings.gitObserver = telemetry.metrics?.gitObserver
        let connection: GridConnection
        do {
            connection = try GridConnection(settings: settings)
        } catch {
            ImageCLI.fail(error)
        }
        var options = GridWorker.Options()
        options.once = once
        options.maxTasks = maxTasks
        options.service = service
        options.metrics = telemetry.metrics
        options.webhook = telemetry.webhook
        // Trust is the host's (docs/ARCHITECTURE.md §9): a trust file that cannot be used stops the worker, as a bad setting does.
        let trust: HostTrust
        do {
            trust = try HostTrust.load(state: settings.state)
        } catch {
            FileHandle.standardError.write(Data("dgrid: \(error)\n".utf8))
            throw ExitCode(78)
        }
        // Whose claims bind and whose results fold (docs/ARCHITECTURE.md §11): the host's, stated at start.
        do {
            let workers = try WorkerTrust.load(state: settings.state, trust: trust)
            connection.workerTrust = workers
            logger.info("worker trust", metadata: ["mode": "\(workers.mode.rawValue)"])
            if workers.mode == .off {
                logger.warning("worker_trust = \"off\": claims and results are taken on any pusher's word")
            }
        } catch {
            FileHandle.standardError.write(Data("dgrid: \(error)\n".utf8))
            throw ExitCode(78)
        }
        let unsigned = allowUnsigned || environment["DGRID_ALLOW_UNSIGNED"] == "1"
        options.signatures = TaskSignatureCheck(trust: trust, allowUnsigned: unsigned, defaultImage: settings.defaultImage)
        do {
            options.gridPin = GridPin(path: try settings.gridPinPath())
            options.policyPin = PolicySerialPin(path: try settings.policySerialPinPath())
        } catch {
            ImageCLI.fail(error)
        }
        do {
            options.audit = try AuditLog(state: settings.state) { problem in logger.error("\(problem)") }
        } catch {
            logger.error("audit log unavailable: \(error)")
        }
        if options.signatures.allowUnsigned {
            let event = AuditEvent(kind: .unsignedAllowed, nodeID: settings.nodeID,
                                   reason: unsigned ? "--allow-unsigned" : "trust/policy.toml require_signatures = false")
            options.audit?.record(event)
            telemetry.webhook?.send(.security(event))
            logger.warning("unsigned tasks allowed: anyone who can push to the grid runs code on this host",
                           metadata: ["by": "\(unsigned ? "--allow-unsigned" : "trust/policy.toml require_signatures = false")"])
        } else if trust.store.allowedSigners.entries.isEmpty {
            logger.warning("no trusted signers: every task will be rejected until \(settings.state.path)/trust/allowed_signers lists keys")
        }
        logger.info("trust", metadata: ["signers": "\(trust.store.allowedSigners.entries.count)", "revoked": "\(trust.store.revokedKeys.count)",
                                        "min_signers": "\(trust.policy.minSigners)", "require_signatures": "\(!options.signatures.allowUnsigned)"])
        let worker = GridWorker(connection: connection, options: options, logger: logger)
        let graceSeconds = config.graceSeconds
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

    /// The settings given by their own flags, for the resolver to rank above
    /// environment and file.
    var dedicatedFlags: [WorkerConfigResolver.Flag] {
        var flags: [WorkerConfigResolver.Flag] = []
        if let nodeId { flags.append(.init(key: .nodeID, text: nodeId, name: "--node-id")) }
        if let slots { flags.append(.init(key: .slots, text: String(slots), name: "--slots")) }
        if let lease { flags.append(.init(key: .leaseSeconds, text: String(lease), name: "--lease")) }
        if let grace { flags.append(.init(key: .graceSeconds, text: String(grace), name: "--grace")) }
        if let metricsListen { flags.append(.init(key: .metricsListen, text: metricsListen, name: "--metrics-listen")) }
        if let webhook { flags.append(.init(key: .webhookURL, text: webhook, name: "--webhook")) }
        if let webhookSecretFile { flags.append(.init(key: .webhookSecretFile, text: webhookSecretFile, name: "--webhook-secret-file")) }
        return flags
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
