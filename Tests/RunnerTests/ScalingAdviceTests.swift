import Testing
@testable import Runner

/// The scaling formula (docs/ARCHITECTURE.md §12), one row per situation an autoscaler meets.
@Suite(.unit)
struct ScalingAdviceTests {
    struct Row: Sendable, CustomStringConvertible {
        let name: String
        let target: Double, waiting: Int, running: Int, duration: Double, slots: Double, live: Int
        var minWorkers = 0
        var maxWorkers: Int? = nil
        let wanted: Int, action: ScalingAdvice.Action
        var description: String { name }
    }

    static let rows: [Row] = [
        Row(name: "an idle grid wants nobody", target: 600, waiting: 0, running: 0, duration: 30, slots: 2, live: 0, wanted: 0, action: .hold),
        Row(name: "an idle grid lets its workers go", target: 600, waiting: 0, running: 0, duration: 30, slots: 2, live: 3, wanted: 0, action: .scaleDown),
        Row(name: "min workers are kept", target: 600, waiting: 0, running: 0, duration: 30, slots: 2, live: 3, minWorkers: 1, wanted: 1, action: .scaleDown),
        // 100 tasks of 60 s in 10 min: 10 per slot, 10 slots, 4 slots a worker → 3 workers.
        Row(name: "short tasks share slots", target: 600, waiting: 90, running: 10, duration: 60, slots: 4, live: 1, wanted: 3, action: .scaleUp),
        // Tasks longer than the target: one slot each.
        Row(name: "long tasks need a slot each", target: 600, waiting: 7, running: 1, duration: 3_600, slots: 2, live: 4, wanted: 4, action: .hold),
        Row(name: "max workers cap the advice", target: 60, waiting: 1_000, running: 0, duration: 60, slots: 1, live: 2, maxWorkers: 50, wanted: 50, action: .scaleUp),
        Row(name: "a sub-second task on a long target", target: 600, waiting: 5, running: 0, duration: 0.02, slots: 1, live: 0, wanted: 1, action: .scaleUp),
        Row(name: "a zero duration does not divide by zero", target: 600, waiting: 5, running: 0, duration: 0, slots: 1, live: 1, wanted: 1, action: .hold),
    ]

    @Test(arguments: rows)
    func theAdviceFollowsTheFormula(_ row: Row) {
        let advice = ScalingAdvice(targetSeconds: row.target, waiting: row.waiting, running: row.running, meanDurationSeconds: row.duration,
                                   slotsPerWorker: row.slots, workersLive: row.live, minWorkers: row.minWorkers, maxWorkers: row.maxWorkers)
        #expect(advice.workersWanted == row.wanted, "\(row.name): \(advice)")
        #expect(advice.action == row.action, "\(row.name): \(advice)")
        #expect(advice.delta == row.wanted - row.live)
        #expect(advice.formula == ScalingAdvice.formulaText)
    }
}
