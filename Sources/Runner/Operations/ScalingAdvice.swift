/// How many workers the grid wants for its queue to drain within a target
/// time (docs/ARCHITECTURE.md §12), from what the ledger shows: the tasks
/// waiting and running, how long tasks took, and how many slots a worker has.
///
///     tasks_per_slot = max(1, floor(target / mean_duration))
///     slots_wanted   = ceil((waiting + running) / tasks_per_slot)
///     workers_wanted = clamp(ceil(slots_wanted / slots_per_worker), min_workers, max_workers)
///
/// A slot finishes `target / mean_duration` tasks within the target, but never
/// less than one: a task longer than the target still needs a slot of its own.
/// Running tasks count as whole tasks still to do (each holds its slot until
/// it ends; counting the half they have left on average would under-provision
/// a grid of long tasks). Tasks waiting on dependencies count too: they are the
/// queue the target is about. The action compares the wanted workers with the
/// live, healthy ones: scale up, scale down, or hold.
public struct ScalingAdvice: Sendable, Codable, Equatable {
    public enum Action: String, Sendable, Codable {
        case scaleUp = "scale_up"
        case scaleDown = "scale_down"
        case hold
    }

    public var targetSeconds: Double
    public var waiting: Int
    public var running: Int
    public var meanDurationSeconds: Double
    public var slotsPerWorker: Double
    public var tasksPerSlot: Int
    public var slotsWanted: Int
    public var workersWanted: Int
    /// Live, healthy workers now.
    public var workersLive: Int
    /// `workersWanted - workersLive`.
    public var delta: Int
    public var action: Action
    /// The formula in one line, for whoever reads the JSON.
    public var formula: String

    public static let formulaText = "workers_wanted = clamp(ceil(ceil((waiting + running) / max(1, floor(target / mean_duration))) / slots_per_worker), min_workers, max_workers)"

    enum CodingKeys: String, CodingKey {
        case targetSeconds = "target_seconds", waiting, running, meanDurationSeconds = "mean_duration_seconds"
        case slotsPerWorker = "slots_per_worker", tasksPerSlot = "tasks_per_slot", slotsWanted = "slots_wanted"
        case workersWanted = "workers_wanted", workersLive = "workers_live", delta, action, formula
    }

    public init(targetSeconds: Double, waiting: Int, running: Int, meanDurationSeconds: Double, slotsPerWorker: Double,
                workersLive: Int, minWorkers: Int = 0, maxWorkers: Int? = nil) {
        self.targetSeconds = targetSeconds
        self.waiting = max(0, waiting)
        self.running = max(0, running)
        self.meanDurationSeconds = meanDurationSeconds
        self.slotsPerWorker = max(1, slotsPerWorker)
        self.workersLive = max(0, workersLive)
        let duration = max(meanDurationSeconds, 0.001)
        let perSlot = targetSeconds / duration
        tasksPerSlot = perSlot >= Double(Int.max / 2) ? Int.max / 2 : max(1, Int(perSlot.rounded(.down)))
        let tasks = self.waiting + self.running
        slotsWanted = tasks == 0 ? 0 : (tasks + tasksPerSlot - 1) / tasksPerSlot
        var wanted = Int((Double(slotsWanted) / self.slotsPerWorker).rounded(.up))
        wanted = max(wanted, max(0, minWorkers))
        if let maxWorkers { wanted = min(wanted, max(maxWorkers, max(0, minWorkers))) }
        workersWanted = wanted
        delta = wanted - self.workersLive
        action = delta > 0 ? .scaleUp : delta < 0 ? .scaleDown : .hold
        formula = Self.formulaText
    }
}
