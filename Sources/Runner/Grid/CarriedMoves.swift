/// Ref moves a slot has ready but has not pushed — a finished task's result — carried by the
/// next push it makes anyway: its next claim (docs/ARCHITECTURE.md §11, "Requests per task").
/// One push then claims the next task and publishes the last result, each ref judged on its own,
/// so a task costs a listing and one push instead of a listing and two. Taken by the first push
/// that can: `outcomes` says what the remote did with each move; nil while not pushed (the slot
/// then pushes them itself).
final class CarriedMoves {
    let moves: [RefMove]
    private(set) var outcomes: [String: RefUpdate]?

    init(_ moves: [RefMove]) {
        self.moves = moves
    }

    /// The moves to add to a push, once: empty after the first push took them.
    func take() -> [RefMove] {
        outcomes == nil ? moves : []
    }

    /// What the push that took them did; a move with no outcome was refused.
    func record(_ pushed: [String: RefUpdate]) {
        guard outcomes == nil else { return }
        outcomes = Dictionary(uniqueKeysWithValues: moves.map { ($0.name, pushed[$0.name] ?? .rejected(reason: "not pushed")) })
    }

    /// Whether every move was applied.
    var applied: Bool { outcomes.map { $0.values.allSatisfy { $0 == .applied } } ?? false }
}
