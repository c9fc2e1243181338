import Foundation

/// Keeps a grid's backends in step (docs/ARCHITECTURE.md §11, "Several backends"), run by the
/// fold-lease holder after its fold. For each other backend it can reach:
/// - main: the same tip as the authority's → nothing; behind it → moved forward to it;
///   ahead of it (it was the authority during a failover, or the authority came back from an
///   older copy) → the authority is moved forward; both moved → a merge commit on top of both
///   (`MainMerge`: a task finished on both keeps the authority's record, the other's goes to
///   `tasks/late/`), on the authority, then on the other; no common history → left alone and
///   said (two different grids under one `--repo` list, or main compacted on one);
/// - results published there and not on the authority (during a failover) are copied to the
///   authority, whose fold takes them, and deleted there once the authority holds them.
/// Every move is a compare-and-swap: a racing reconciler or fold makes it a no-op, redone next time.
public struct BackendReconciler {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    /// What one run did, per backend.
    public struct Outcome: Sendable, Equatable, CustomStringConvertible {
        public enum Main: Sendable, Equatable {
            case same, created, forwarded, authorityForwarded, merged(late: Int)
            case apart(String)
            case unreachable(String)
        }
        public var backend: String
        public var main: Main
        public var copiedResults = 0

        public var description: String {
            let what: String
            switch main {
            case .same: what = "main in step"
            case .created: what = "main created"
            case .forwarded: what = "main moved forward to the authority's"
            case .authorityForwarded: what = "the authority's main moved forward to this backend's"
            case .merged(let late): what = "main merged with the authority's (\(late) second runs kept in tasks/late/)"
            case .apart(let why): what = "not reconciled: \(why)"
            case .unreachable(let why): what = "unreachable: \(why)"
            }
            return "\(backend): \(what)" + (copiedResults > 0 ? ", \(copiedResults) results copied to the authority" : "")
        }
    }

    /// The largest file the merge copies between backends.
    var blobLimit = 64 << 20

    public func run() throws(GridError) -> [Outcome] {
        guard connection.backends.count > 1 else { return [] }
        let authority = connection.authority
        var authorityRefs = try connection.withLedger(of: authority) { (ledger) throws(LedgerError) in try ledger.remoteRefs() }
        var outcomes: [Outcome] = []
        for backend in connection.backends where backend.index != authority.index {
            guard backend.isUsable else {
                outcomes.append(Outcome(backend: backend.shownRepository,
                                        main: .unreachable(backend.circuit.snapshot().lastError ?? "its circuit is open")))
                continue
            }
            do throws(GridError) {
                outcomes.append(try reconcile(backend, with: authority, authorityRefs: &authorityRefs))
            } catch {
                // Only a network failure is "unreachable"; anything else (a record past the blob limit, a path
                // the ledger refuses, both written on the backup by anyone who can push there) leaves both
                // backends as they were and says why, each turn, until someone removes it.
                let network: Bool
                if case .ledger(let failure) = error { network = failure.kind == .network } else { network = false }
                outcomes.append(Outcome(backend: backend.shownRepository, main: network ? .unreachable("\(error)") : .apart("\(error)")))
            }
        }
        return outcomes
    }

    private func reconcile(_ backend: GridBackend, with authority: GridBackend,
                           authorityRefs: inout [String: GitOID]) throws(GridError) -> Outcome {
        let main = GridConnection.mainRef
        let theirRefs = try connection.withLedger(of: backend) { (ledger) throws(LedgerError) in try ledger.remoteRefs() }
        var outcome = Outcome(backend: backend.shownRepository, main: .same)
        let ours = authorityRefs[main], theirs = theirRefs[main]
        if ours != theirs, let ours {
            let step = try reconcileMain(ours: ours, theirs: theirs, backend: backend, authority: authority)
            outcome.main = step.outcome
            if let tip = step.authorityTip { authorityRefs[main] = tip }
        }
        outcome.copiedResults = try copyResults(theirRefs, from: backend, to: authority, authorityRefs: authorityRefs)
        return outcome
    }

    /// Brings the two mains together; `authorityTip` is the authority's new tip when it moved.
    private func reconcileMain(ours: GitOID, theirs: GitOID?, backend: GridBackend,
                               authority: GridBackend) throws(GridError) -> (outcome: Outcome.Main, authorityTip: GitOID?) {
        let main = GridConnection.mainRef
        try connection.withLedger(of: authority) { (ledger) throws(LedgerError) in
            if !ledger.hasObject(ours) { try ledger.fetch([main], keepRefs: false) }
        }
        guard let theirs else {
            let update = try connection.withLedger(of: backend) { (ledger) throws(LedgerError) in try ledger.createRef(main, target: ours) }
            return (update == .applied ? .created : .same, nil)
        }
        try connection.withLedger(of: backend) { (ledger) throws(LedgerError) in
            if !ledger.hasObject(theirs) { try ledger.fetch([main], keepRefs: false) }
        }
        // The merge base says it all: theirs (behind), ours (ahead), another commit (both moved), none (apart).
        let base = try connection.withLedger(of: authority) { (ledger) throws(LedgerError) in try ledger.mergeBase(ours, theirs) }
        if base == theirs {
            let update = try connection.withLedger(of: backend) { (ledger) throws(LedgerError) in
                try ledger.updateRef(main, from: theirs, to: ours)
            }
            return (update == .applied ? .forwarded : .same, nil)
        }
        if base == ours {
            let update = try connection.withLedger(of: authority) { (ledger) throws(LedgerError) -> RefUpdate in
                let update = try ledger.updateRef(main, from: ours, to: theirs)
                if update == .applied { try ledger.setMirrorRef(main, to: theirs) }
                return update
            }
            return update == .applied ? (.authorityForwarded, theirs) : (.same, nil)
        }
        guard let base else {
            return (.apart("its main shares no history with the authority's: another grid, or main compacted on one of them; "
                           + "check that every --repo names the same grid"), nil)
        }
        let merged = try merge(base: base, ours: ours, theirs: theirs, on: authority, otherBackend: backend.shownRepository)
        let onAuthority = try connection.withLedger(of: authority) { (ledger) throws(LedgerError) -> RefUpdate in
            let update = try ledger.updateRef(main, from: ours, to: merged.commit)
            if update == .applied { try ledger.setMirrorRef(main, to: merged.commit) }
            return update
        }
        guard onAuthority == .applied else { return (.same, nil) }
        _ = try connection.withLedger(of: backend) { (ledger) throws(LedgerError) in
            try ledger.updateRef(main, from: theirs, to: merged.commit)
        }
        return (.merged(late: merged.late), merged.commit)
    }

    /// The merge commit of the two tips (parents: ours, then theirs), built in the mirror.
    private func merge(base: GitOID, ours: GitOID, theirs: GitOID, on authority: GridBackend,
                       otherBackend: String) throws(GridError) -> (commit: GitOID, late: Int) {
        try connection.withLedger(of: authority) { (ledger) throws(LedgerError) -> (GitOID, Int) in
            let plan = MainMerge(base: try ledger.tree(of: base), ours: try ledger.tree(of: ours), theirs: try ledger.tree(of: theirs),
                                 theirsLabel: String(theirs.hex.prefix(12)))
            var changes: [LedgerChange] = []
            for (path, change) in plan.changes.sorted(by: { $0.key < $1.key }) {
                switch change {
                case .put(let blob): changes.append(LedgerChange(path: path, content: try ledger.blob(blob, limit: blobLimit)))
                case .delete: changes.append(LedgerChange(path: path, content: nil))
                }
            }
            var reasons = 0
            for late in plan.late where late.from.hasSuffix(".json") {
                let reasonPath = String(late.to.dropLast(".json".count)) + ".reason"
                changes.append(LedgerChange(path: reasonPath, content: Array(MainMerge.reason(late, otherBackend: otherBackend).utf8)))
                reasons += 1
            }
            let commit = try ledger.commit(parent: ours, changes: changes,
                                           message: "dgrid reconcile: merge main of \(otherBackend) (\(reasons) second runs kept in tasks/late/)",
                                           mergedWith: theirs)
            return (commit, reasons)
        }
    }

    /// Results on `backend` that the authority lacks: created there (one push), then deleted on
    /// `backend` where the authority now holds the same commit. A result the authority holds
    /// another commit for stays until the authority's fold has taken its own.
    private func copyResults(_ theirRefs: [String: GitOID], from backend: GridBackend, to authority: GridBackend,
                             authorityRefs: [String: GitOID]) throws(GridError) -> Int {
        let results = theirRefs.filter { $0.key.hasPrefix(GridConnection.resultsPrefix) }
        guard !results.isEmpty else { return 0 }
        let missing = results.filter { authorityRefs[$0.key] == nil }.keys.sorted()
        var copied = 0
        var held = results.filter { authorityRefs[$0.key] == $0.value }.map(\.key)
        if !missing.isEmpty {
            try connection.withLedger(of: backend) { (ledger) throws(LedgerError) in try ledger.fetch(missing, keepRefs: false) }
            let outcomes = try connection.withLedger(of: authority) { (ledger) throws(LedgerError) -> [String: RefUpdate] in
                try ledger.moveRefs(missing.map { RefMove($0, from: nil, to: results[$0]!) })
            }
            for name in missing where outcomes[name] == .applied {
                copied += 1
                held.append(name)
            }
        }
        if !held.isEmpty {
            _ = try connection.withLedger(of: backend) { (ledger) throws(LedgerError) in
                try ledger.moveRefs(held.sorted().map { RefMove($0, from: results[$0]!, to: nil) })
            }
        }
        return copied
    }
}
