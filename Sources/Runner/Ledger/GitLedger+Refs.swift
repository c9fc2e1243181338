import CGit2
import Sandbox

/// One ref move: `old` nil means the ref must not exist yet (create), `new`
/// nil means delete. Never blind: the remote (or, for a local repository,
/// its ref lock) compares `old` with what it holds.
public struct RefMove: Sendable, Equatable {
    public let name: String
    public let old: GitOID?
    public let new: GitOID?
    /// `new` need not descend from `old`: the ref's history is replaced, not
    /// extended (a renewed lease is one orphan commit, docs/ARCHITECTURE.md §6).
    /// Still compare-and-swap on `old`; only the fast-forward rule is waived.
    public let replacesHistory: Bool

    public init(_ name: String, from old: GitOID?, to new: GitOID?, replacingHistory: Bool = false) {
        self.name = name
        self.old = old
        self.new = new
        replacesHistory = replacingHistory
    }

    var operation: String {
        switch (old, new) {
        case (nil, let new?): "create \(name) at \(new)"
        case (let old?, let new?): "\(replacesHistory ? "replace" : "update") \(name) from \(old) to \(new)"
        case (let old?, nil): "delete \(name) at \(old)"
        case (nil, nil): "move \(name) from nothing to nothing"
        }
    }
}

/// The ref moves the claim protocol is built on. None is ever blind: each
/// names the value it expects the remote ref to hold, and the remote (or, for a
/// local repository, its ref lock) decides. `.rejected` means someone else moved
/// first; a thrown error means we could not find out.
extension GitLedger {
    /// Creates `name` on the remote pointing at `target` (pushing the objects). Exclusive: `.rejected` when the ref already exists remotely. Never forced.
    public func createRef(_ name: String, target: GitOID) throws(LedgerError) -> RefUpdate {
        try move(RefMove(name, from: nil, to: target))
    }

    /// Moves `name` on the remote from `old` to `new` only if it still is `old` (compare-and-swap); `.rejected` otherwise. Never forced.
    ///
    /// `new` must be `old` or a descendant of it (leases are renewed by fast-forward,
    /// docs/ARCHITECTURE.md §6); anything else is `.rejected` on every transport, because libgit2's
    /// smart push refuses non-fast-forwards without force.
    public func updateRef(_ name: String, from old: GitOID, to new: GitOID) throws(LedgerError) -> RefUpdate {
        try move(RefMove(name, from: old, to: new))
    }

    /// Moves `name` from `old` to `new` only if it still is `old`, where `new` is
    /// any commit — typically an orphan (no parent), so the ref's history stays one
    /// commit however often it moves (lease renewals, takeovers). Compare-and-swap
    /// as `updateRef`: a local repository compares under the ref lock; over a smart
    /// transport the push skips libgit2's client-side fast-forward check, but still
    /// sends `old` and the server's receive-pack compares it under its ref lock
    /// (a server with `receive.denyNonFastForwards` refuses every such move).
    public func replaceRef(_ name: String, from old: GitOID, to new: GitOID) throws(LedgerError) -> RefUpdate {
        try move(RefMove(name, from: old, to: new, replacingHistory: true))
    }

    /// Deletes `name` on the remote only if it still points at `expected`.
    public func deleteRef(_ name: String, expected: GitOID) throws(LedgerError) -> RefUpdate {
        try move(RefMove(name, from: expected, to: nil))
    }

    private func move(_ move: RefMove) throws(LedgerError) -> RefUpdate {
        try moveRefs([move])[move.name] ?? .rejected(reason: "no outcome for \(move.name)")
    }

    /// Several ref moves with one connection (one push on a smart transport):
    /// each is judged on its own — the outcome of every name is in the result,
    /// `.applied` or `.rejected` with the reason. A fold deleting a hundred
    /// refs, or a heartbeat renewing every lease, costs one round trip.
    public func moveRefs(_ moves: [RefMove]) throws(LedgerError) -> [String: RefUpdate] {
        guard let first = moves.first else { return [:] }
        let operation = moves.count == 1 ? first.operation : "\(first.operation) and \(moves.count - 1) more ref moves"
        var seen = Set<String>()
        for move in moves {
            try validateRefName(move.name, operation: move.operation)
            guard seen.insert(move.name).inserted else {
                throw LedgerError(.invalidInput, operation: operation, remote: remoteForErrors,
                                  message: "\(move.name) is moved twice in one batch",
                                  hint: "move each ref at most once per batch")
            }
        }
        // A batch the remote refused any part of counts as `rejected`: it answered.
        return try observed(.push, about: moves.map(\.name).joined(separator: " "), outcome: { $0.values.contains { $0 != .applied } ? .rejected : .success }) {
            () throws(LedgerError) -> [String: RefUpdate] in try moveRefsLocked(moves, operation: operation)
        }
    }

    private func moveRefsLocked(_ moves: [RefMove], operation: String) throws(LedgerError) -> [String: RefUpdate] {
        lastPushListing = nil
        return try lock.run { () throws(LedgerError) -> [String: RefUpdate] in
            try repairingMirror { () throws(LedgerError) -> [String: RefUpdate] in
                var outcomes: [String: RefUpdate] = [:]
                var ready: [RefMove] = []
                for move in moves {
                    if move.old == nil && move.new == nil {
                        outcomes[move.name] = .rejected(reason: "nothing to do")
                        continue
                    }
                    if let new = move.new {
                        _ = try lookupCommit(new, operation: move.operation)
                        if let old = move.old, old != new, !move.replacesHistory,
                           try !isDescendant(new, of: old, operation: move.operation) {
                            outcomes[move.name] = .rejected(reason: "\(new) is not a fast-forward of \(old)")
                            continue
                        }
                    }
                    ready.append(move)
                }
                switch location {
                case .local(let path):
                    // One open of the remote repository for the whole batch (a fold deletes a hundred refs).
                    guard !ready.isEmpty else { break }
                    let remote = try openLocalRemote(path, operation: operation)
                    for move in ready {
                        outcomes[move.name] = try localMove(move.name, from: move.old, to: move.new, remote: remote,
                                                            operation: move.operation)
                    }
                case .git, .http, .ssh:
                    let connecting = Double(Clock.monotonicNanoseconds()) / 1e9
                    var shown: [String: GitOID]?
                    let pushed = try withDeadline(.push, operation: operation) { () throws(LedgerError) -> [String: RefUpdate] in
                        try smartPush(ready, operation: operation, shown: &shown)
                    }
                    outcomes.merge(pushed) { first, _ in first }
                    lastPushListing = shown.map {
                        PushListing(advertised: $0, moves: ready, outcomes: outcomes, listedAt: connecting)
                    }
                }
                return outcomes
            }
        }
    }

    private func isDescendant(_ new: GitOID, of old: GitOID, operation: String) throws(LedgerError) -> Bool {
        var newOID = new.raw, oldOID = old.raw
        let code = git_graph_descendant_of(repository.pointer, &newOID, &oldOID)
        if code < 0 {
            throw failure(code, kind: .object, operation: operation,
                          hint: "\(old) is not in the mirror; fetch the ref before moving it")
        }
        return code == 1
    }
}
