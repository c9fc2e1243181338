import Prometheus
import Testing
@testable import Runner

/// What a worker's /metrics page holds (docs/ARCHITECTURE.md §12), through the
/// Prometheus registry the worker uses: every labelled series exists at 0 from
/// the start, names follow Prometheus' conventions, and the values follow what
/// the worker reports.
@Suite(.unit)
struct WorkerMetricsExpositionTests {
    static func page(_ record: (WorkerMetrics) -> Void = { _ in }) -> String {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = WorkerMetrics.durationBuckets.mapValues { $0.map { Duration.nanoseconds(Int64($0 * 1e9)) } }
        let metrics = WorkerMetrics(factory: factory, nodeID: "w1", version: "0.1.0", slots: 4)
        record(metrics)
        return registry.emitToString()
    }

    @Test func everySeriesExistsAtZeroOnAFreshWorker() {
        let page = Self.page()
        for outcome in TaskOutcome.allCases { #expect(page.contains("dgrid_worker_tasks_total{outcome=\"\(outcome.rawValue)\"} 0"), "\(outcome)") }
        for kind in GitOperationKind.allCases {
            for result in GitOperationOutcome.allCases {
                #expect(page.contains("dgrid_worker_git_operations_total{operation=\"\(kind.rawValue)\",result=\"\(result.rawValue)\"} 0"))
            }
        }
        #expect(page.contains("dgrid_worker_slots 4.0") && page.contains("dgrid_worker_slots_busy 0"))
        #expect(page.contains("dgrid_worker_healthy 1.0") && page.contains("dgrid_worker_health_reason{reason=\"none\"} 1.0"))
        #expect(page.contains("dgrid_worker_circuit_state{backend=\"git\",state=\"closed\"} 1.0"))
        #expect(page.contains("dgrid_worker_info{node_id=\"w1\",version=\"0.1.0\"} 1.0"))
        // Conventions: counters end in _total, durations are _seconds histograms.
        for line in page.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            if parts[3] == "counter" { #expect(parts[2].hasSuffix("_total"), "\(line)") }
            if parts[3] == "histogram" { #expect(parts[2].hasSuffix("_seconds"), "\(line)") }
            #expect(parts[2].hasPrefix("dgrid_worker_"), "\(line)")
        }
    }

    @Test func valuesFollowWhatTheWorkerReports() {
        let page = Self.page { metrics in
            metrics.taskEnded(.completed, seconds: 42)
            metrics.taskEnded(.completed, seconds: 3)
            metrics.taskEnded(.givenBack)
            metrics.slotBusy()
            metrics.slotBusy()
            metrics.slotFree()
            metrics.claimed(afterMilliseconds: 30, racesLost: 2)
            metrics.gitOperation(.push, .failure, seconds: 0.5)
            metrics.gitOperation(.push, .failure, seconds: 0.5)
            metrics.gitOperation(.list, .rejected, seconds: 0.01)
            metrics.gitOperation(.fetch, .failure, seconds: 0.5)
            metrics.health(.artifactRegistry)
            metrics.audited(.signatureRefused)
            metrics.audited(.quotaRefused)
            metrics.audited(.signatureAccepted)
        }
        #expect(page.contains("dgrid_worker_tasks_total{outcome=\"completed\"} 2"))
        #expect(page.contains("dgrid_worker_tasks_total{outcome=\"given_back\"} 1"))
        #expect(page.contains("dgrid_worker_task_duration_seconds_count{outcome=\"completed\"} 2"))
        #expect(page.contains("dgrid_worker_task_duration_seconds_sum{outcome=\"completed\"} 45.0"))
        #expect(page.contains("dgrid_worker_task_duration_seconds_bucket{outcome=\"completed\",le=\"5.0\"} 1"))
        #expect(page.contains("dgrid_worker_slots_busy 1"))
        #expect(page.contains("dgrid_worker_claim_races_lost_total 2"))
        #expect(page.contains("dgrid_worker_git_operations_total{operation=\"push\",result=\"failure\"} 2"))
        // A rejected ref move is an answer: the streak of failures starts again after it.
        #expect(page.contains("dgrid_worker_git_consecutive_failures{backend=\"git\"} 1.0"))
        #expect(page.contains("dgrid_worker_healthy 0.0") && page.contains("dgrid_worker_health_reason{reason=\"artifact_registry\"} 1.0")
                && page.contains("dgrid_worker_health_reason{reason=\"none\"} 0.0"))
        #expect(page.contains("dgrid_worker_signature_refusals_total 1") && page.contains("dgrid_worker_quota_refusals_total 1"))
    }
}
