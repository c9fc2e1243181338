import Foundation

/// Group commit for one worker's slots (docs/ARCHITECTURE.md §11, "Claims and results share
/// pushes"): claims and results that slots push while another slot's push is on the wire wait
/// for it and then go together, as one push. A slot alone pushes at once, as before — nothing
/// waits for company — so batching costs no latency; under load, a busy worker's claims and
/// results go several to a push. Each ref is still judged on its own (`GitLedger.moveRefs`).
///
/// Generic over the push so the grouping is tested without a remote (`PushGroupTests`).
final class PushGroup<Builder, Outcome>: @unchecked Sendable {
    /// One slot's part of a push: what builds its moves, and, once pushed, what became of them.
    final class Entry {
        let build: Builder
        /// Names this entry moves; two entries moving one name never share a push (the second waits for the next).
        let names: Set<String>
        fileprivate var outcome: Result<Outcome, GridError>?

        init(build: Builder, names: Set<String>) {
            self.build = build
            self.names = names
        }
    }

    private let condition = NSCondition()
    private var waiting: [Entry] = []
    private var pushing = false

    /// Pushes `entry` with every entry waiting when this thread's turn comes. `push` is
    /// called by one thread at a time with a batch, and must give each entry its outcome.
    func push(_ entry: Entry, with push: ([Entry]) -> [ObjectIdentifier: Result<Outcome, GridError>]) -> Result<Outcome, GridError> {
        condition.lock()
        waiting.append(entry)
        // Another slot's push is on the wire: it may be this entry's turn next (or a leader
        // after it took this one along).
        while entry.outcome == nil && pushing { condition.wait() }
        if let done = entry.outcome {
            condition.unlock()
            return done
        }
        pushing = true
        // This thread's entry first: it is always in the push it leads.
        var batch: [Entry] = [], names: Set<String> = [], later: [Entry] = []
        for waiter in [entry] + waiting.filter({ $0 !== entry }) {
            if waiter.names.isDisjoint(with: names) {
                batch.append(waiter)
                names.formUnion(waiter.names)
            } else {
                later.append(waiter)
            }
        }
        waiting = later
        condition.unlock()

        let outcomes = push(batch)

        condition.lock()
        for member in batch {
            member.outcome = outcomes[ObjectIdentifier(member)] ?? .failure(.local("the grouped push gave no outcome for \(member.names.sorted())"))
        }
        pushing = false
        let own = entry.outcome!
        condition.broadcast()
        condition.unlock()
        return own
    }
}
