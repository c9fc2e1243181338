import Testing
@testable import Runner
import TestSupport

/// The readiness a worker carries from one tip of main to the next
/// (`QueueReadiness.advanced`) must be exactly what it would build from nothing
/// at that tip: random grids, random folds, submissions and hand edits.
@Suite("Queue readiness carried from tip to tip", .unit)
struct QueueReadinessTests {
    /// A small deterministic generator: the same walk on every run.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11 ^ state
        }
    }

    enum Place: Equatable { case queued(version: Int), running, finished(ResultStatus) }

    struct Grid {
        var places: [String: Place] = [:]
        var headers: [GitOID: QueuedHeader] = [:]
        var dependsOn: [String: ([String], DependencyMode)] = [:]
        var tip = 0
        /// One blob id per task file version: ids must never collide.
        var blobs: [String: Int] = [:]

        static func oid(_ n: Int) -> GitOID { GitOID(hex: String(repeating: "0", count: 40 - String(n, radix: 16).count) + String(n, radix: 16))! }

        mutating func snapshot() -> (GridSnapshot, GitOID) {
            tip += 1
            var files: [String: GitOID] = [:]
            for (id, place) in places {
                switch place {
                case .queued(let version):
                    let key = "\(id)@\(version)"
                    if blobs[key] == nil { blobs[key] = 1_000 + blobs.count }
                    let blob = Self.oid(blobs[key]!)
                    let (deps, mode) = dependsOn[id] ?? ([], .default)
                    let n = id.utf8.reduce(0) { $0 &* 31 &+ Int($1) }
                    headers[blob] = QueuedHeader(priority: .normal, createdAt: "2026-12-0\(1 + abs(n) % 8)T00:00:00Z", dependsOn: deps, dependencyMode: mode)
                    files["tasks/queue/normal/\(abs(n) % 3)/\(id).json"] = blob
                case .running: files["tasks/in_progress/n-\(id).json"] = Self.oid(7)
                case .finished(.completed): files["tasks/completed/n-\(id).json"] = Self.oid(8)
                case .finished(.rejected): files["tasks/rejected/\(id).json"] = Self.oid(8)
                case .finished: files["tasks/failed/n-\(id).json"] = Self.oid(8)
                }
            }
            let tipID = Self.oid(tip)
            return (GridSnapshot(mainTip: tipID, files: files, claims: [:], results: [:], nodes: [:]), tipID)
        }
    }

    private func same(_ a: QueueReadiness, _ b: QueueReadiness, step: Int) {
        #expect(a.index.notReady == b.index.notReady, "step \(step): notReady")
        let finalA = Dictionary(a.index.final.map { ($0.id, "\($0.verdict)") }, uniquingKeysWith: { x, _ in x })
        let finalB = Dictionary(b.index.final.map { ($0.id, "\($0.verdict)") }, uniquingKeysWith: { x, _ in x })
        #expect(finalA == finalB, "step \(step): final verdicts")
        #expect(a.ordered.map(\.location.path) == b.ordered.map(\.location.path), "step \(step): claim order")
        #expect(a.index.graph.cycles == b.index.graph.cycles, "step \(step): cycles")
    }

    @Test(arguments: Array(UInt64(1)...12))
    func carryingReadinessForwardEqualsBuildingItAtEachTip(seed: UInt64) throws {
        var random = Generator(state: seed)
        var grid = Grid()
        var next = 0
        func newTask(acyclic: Bool) {
            let id = "t\(next)"
            next += 1
            let known = Array(grid.places.keys)
            var deps: [String] = []
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                if Int.random(in: 0..<12, using: &random) == 0 { deps.append("ghost\(Int.random(in: 0..<3, using: &random))") }
                else if !acyclic, Int.random(in: 0..<6, using: &random) == 0 { deps.append("t\(next + Int.random(in: 0...2, using: &random))") }
                else if let pick = known.randomElement(using: &random) { deps.append(pick) }
            }
            deps = Array(Set(deps)).sorted().filter { $0 != id }
            grid.dependsOn[id] = (deps, DependencyMode.allCases.randomElement(using: &random)!)
            grid.places[id] = .queued(version: 0)
        }
        for _ in 0..<40 { newTask(acyclic: Bool.random(using: &random)) }
        let context = { (grid: Grid) in
            QueueReadiness.Context(header: { (blob) throws(GridError) in grid.headers[blob]! }, shardCount: 3, ownShards: [1])
        }
        var (snapshot, tip) = grid.snapshot()
        var carried = try QueueReadiness.build(snapshot, tip: tip, connection: context(grid))
        for step in 1...60 {
            // A fold: some running tasks finish, some queued start, the fold's verdicts land.
            for (id, place) in grid.places.sorted(by: { $0.key < $1.key }) {
                switch (place, Int.random(in: 0..<5, using: &random)) {
                case (.running, 0), (.running, 1):
                    grid.places[id] = .finished([.completed, .completed, .failed, .rejected].randomElement(using: &random)!)
                case (.queued, 0) where carried.index.isReady(id): grid.places[id] = .running
                default: break
                }
            }
            for (id, verdict) in carried.index.final where Int.random(in: 0..<2, using: &random) == 0 {
                if case .reject = verdict { grid.places[id] = .finished(.rejected) } else { grid.places[id] = .finished(.skipped) }
            }
            // Submissions, a hand edit of a queued file, a removal.
            for _ in 0..<Int.random(in: 0...3, using: &random) { newTask(acyclic: Bool.random(using: &random)) }
            if let edited = grid.places.filter({ if case .queued = $0.value { true } else { false } }).keys.sorted().randomElement(using: &random),
               Int.random(in: 0..<4, using: &random) == 0, case .queued(let version) = grid.places[edited]! {
                grid.dependsOn[edited] = ([], .default)
                grid.places[edited] = .queued(version: version + 1)
            }
            if Int.random(in: 0..<6, using: &random) == 0, let gone = grid.places.keys.sorted().randomElement(using: &random) {
                grid.places[gone] = nil
            }
            // A writer pushes a finished file for a task that was never queued (a named "ghost").
            if Int.random(in: 0..<10, using: &random) == 0 {
                grid.places["ghost\(Int.random(in: 0..<3, using: &random))"] = .finished(.completed)
            }
            (snapshot, tip) = grid.snapshot()
            carried = try carried.advanced(to: snapshot, tip: tip, connection: context(grid))
            let built = try QueueReadiness.build(snapshot, tip: tip, connection: context(grid))
            same(carried, built, step: step)

        }
    }
}
