import CoreMetrics
import Foundation
import Logging
import Prometheus
import Runner

/// The worker's metrics and webhook, set up from its settings before it
/// starts (docs/ARCHITECTURE.md §12). Nothing here stops the worker: a
/// listener that cannot bind is one line on stderr and the worker runs on
/// without metrics; only a webhook without a secret is a configuration error.
struct WorkerTelemetry {
    let metrics: WorkerMetrics?
    let listener: MetricsListener?
    let webhook: WebhookDispatcher?

    /// Without `metrics_listen`, swift-metrics' no-op factory: the worker counts nothing, and carries no registry.
    static func start(config: WorkerConfig, nodeID: String, slots: Int, logger: Logger) throws(WebhookSecretError) -> WorkerTelemetry {
        var metrics: WorkerMetrics?
        var listener: MetricsListener?
        if let address = config.metricsListen {
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.durationHistogramBuckets = WorkerMetrics.durationBuckets.mapValues { $0.map { Duration.nanoseconds(Int64($0 * 1e9)) } }
            let process = ProcessGauges(registry: registry)
            do {
                listener = try MetricsListener.start(address) {
                    process.refresh()
                    return registry.emitToBuffer()
                }
                metrics = WorkerMetrics(factory: factory, nodeID: nodeID, version: RunnerInfo.workerVersion, slots: slots)
                logger.info("metrics", metadata: ["listen": "\(address)", "path": "/metrics",
                                                  "exposure": "\(address.isLoopback ? "loopback" : "reachable from the network: firewall it")"])
            } catch {
                // One line; the worker runs on (docs/ARCHITECTURE.md §12).
                logger.error("\(error)")
            }
        }
        // Read (and wiped from the environment) whether or not a URL is set: no child inherits it.
        let secret = try WebhookSecret.load(file: config.webhookURL == nil ? nil : config.webhookSecretFile)
        var webhook: WebhookDispatcher?
        if let url = config.webhookURL {
            guard let secret else { throw .missing }
            let dispatcher = WebhookDispatcher(url: url, secret: secret, metrics: metrics, logger: logger)
            dispatcher.start()
            webhook = dispatcher
            logger.info("webhook", metadata: ["url": "\(url.origin)", "events": "node.unhealthy, node.healthy, security"])
        }
        return WorkerTelemetry(metrics: metrics, listener: listener, webhook: webhook)
    }

    /// What is queued gets a bounded chance to go out before the process ends.
    func finish() {
        guard let webhook else { return }
        webhook.flush(timeoutSeconds: Self.flushSeconds)
        webhook.stop()
    }

    /// Long enough for a retry or two; short enough that a hanging receiver does not hold a stop.
    static let flushSeconds = 5.0
}

/// `process_resident_memory_bytes` and `process_start_time_seconds`, Prometheus'
/// standard names, read from /proc at each scrape: the idle-RSS goal, watched.
struct ProcessGauges: Sendable {
    private let resident: Prometheus.Gauge

    init(registry: PrometheusCollectorRegistry) {
        resident = registry.makeGauge(name: "process_resident_memory_bytes", labels: [], help: "Resident memory of the worker process in bytes.")
        let start = registry.makeGauge(name: "process_start_time_seconds", labels: [], help: "When the worker process started, in seconds since the Unix epoch.")
        start.set(to: Date().timeIntervalSince1970 - ProcessInfo.processInfo.systemUptime + Self.processUptimeOffset())
    }

    func refresh() {
        // statm's second field: resident pages.
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return }
        resident.set(to: pages * Double(sysconf(Int32(_SC_PAGESIZE))))
    }

    /// Seconds from boot to this process's start (stat's 22nd field, in clock ticks).
    private static func processUptimeOffset() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return ProcessInfo.processInfo.systemUptime }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // Field 22 overall is the 20th after the command's closing parenthesis (fields 3… start there).
        guard fields.count > 19, let ticks = Double(fields[19]) else { return ProcessInfo.processInfo.systemUptime }
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
