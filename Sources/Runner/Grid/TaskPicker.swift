import Foundation
import Trust

/// Chooses the next task to claim (docs/ARCHITECTURE.md §6–7): queued on main, not
/// finished, no published result, and either unclaimed or claimed under a
/// lease that has run out; ordered by priority, then FIFO, own shards first.
struct TaskPicker {
    let connection: GridConnection
    /// The trust in force for a listing (the host's, with main's fleet policy beneath
    /// it): each task's principal, for the counted limits of its policy (`QuotaBook`).
    /// nil: no counted limits (a picker without a worker's trust).
    var trustFor: ((GridSnapshot) throws(GridError) -> TaskSignatureCheck)? = nil
    /// Told of each task left waiting by a counted limit, and why.
    var onDefer: (String, String) -> Void = { _, _ in }
    /// Told of each claim won, the moment it is won: the worker's heartbeat renews
    /// it from then on, however long the checks after it wait on the remote.
    var onClaimed: (HeldClaim) -> Void = { _ in }
    /// Told of a won claim the picker drops again (withdrawn or given back): the
    /// renewals stop, and the claim as last renewed comes back, to drop from there.
    var onDropped: (String) -> HeldClaim? = { _ in nil }
    /// Told of a live claim this host's reputation policy refuses (`ReputationGate`): the claim
    /// commit, its task, its node and why. The picker takes the task over; the worker audits it.
    var onClaimRefused: (GitOID, String, String, String) -> Void = { _, _, _, _ in }
    /// Told what each pick cost before any claim: for the worker's debug log and `bench/dag.sh`.
    var onPollCost: (PollCost) -> Void = { _ in }

    /// What one pick spent before its first claim attempt.
    struct PollCost {
        /// Listing the grid (refs, and main's tree when its tip moved).
        var listMilliseconds: Double
        /// Deciding which queued tasks may be claimed: dependencies, leases, order.
        var readinessMilliseconds: Double
        /// Queued tasks the pick looked at, and those ready to claim.
        var queued: Int
        var candidates: Int
    }

    struct Pick {
        let claim: HeldClaim
        let taskBytes: [UInt8]
        /// The task's signature files, those that sit beside it (docs/ARCHITECTURE.md §9).
        var signatures = TaskSignatureFiles()
        /// The grid's id as main says after the claim.
        var grid: GridID? = nil
        /// Why the task file could not be read; the task is then rejected with it.
        let unreadable: String?
        /// A queue limit of the host's policy the task is past; it is then rejected with it.
        var refused: AdmissionRefusal? = nil
        /// The trust the pick was made under: the task is checked with it.
        var trust: TaskSignatureCheck? = nil
        /// From the start of the pick to the won claim, and the claims lost to other workers on the way.
        var claimMilliseconds = 0
        var racesLost = 0
    }

    /// Workers reading the same queue would all race for its head, and all
    /// but one lose a push per task. Trying the first few of the top priority
    /// in a random order keeps FIFO to within a handful of tasks and spreads
    /// the claims; priority order is never broken.
    static func spread(_ ordered: [QueueCandidate], window: Int = minimumSpread) -> [QueueCandidate] {
        guard let top = ordered.first?.priority else { return ordered }
        let head = ordered.prefix { $0.priority == top }.prefix(window)
        return head.shuffled() + ordered.dropFirst(head.count)
    }

    /// Queued tasks, and tasks a fold already moved to `in_progress/` (their
    /// worker may have died since: the lease check decides). An
    /// in_progress file counts only for a task id a claim ref names, or when
    /// no queue file holds the same id.
    static func claimable(_ snapshot: GridSnapshot) -> [QueueLocation] {
        snapshot.queue + inProgressNotQueued(snapshot)
    }

    /// The in_progress files of `claimable` (a name reads one way, node ids hold
    /// no '-': never a guess at which task a file is).
    static func inProgressNotQueued(_ snapshot: GridSnapshot) -> [QueueLocation] {
        var running: [QueueLocation] = []
        let candidates = Set(snapshot.claims.keys).union(snapshot.index.inProgressPathsByTask.keys)
        for id in candidates.sorted() where snapshot.queuePaths(of: id).isEmpty {
            guard let path = snapshot.inProgressPaths(of: id).first else { continue }
            running.append(QueueLocation(path: path, taskID: id, priority: nil, shard: nil))
        }
        return running
    }

    /// Candidates a pick checks at a time when no counted limit needs them all.
    static let chunk = 32

    /// The head of the queue a pick spreads its claims over: the grid's nodes, 4 to 256.
    static let minimumSpread = 4
    static func spreadWindow(nodes: Int) -> Int {
        min(max(nodes, minimumSpread), 256)
    }

    /// How long a claim commit counts as live without being read: half the
    /// lease, at most 5 s. A takeover waits at most this long past the lease.
    static func claimFreshSeconds(_ settings: GridSettings) -> Double {
        min(5, settings.leaseSeconds / 2)
    }

    /// Claims the first task it can win; nil when nothing is claimable now.
    /// `reusingWithin`: seconds for which the newest listing this worker holds, when taken after
    /// `takenAfter` (monotonic seconds), stands in for a listing of its own
    /// (`GridConnection.snapshot(reusingWithin:)`): the pick right after a task walks what that
    /// task's result push was shown. 0: list.
    func next(now: Date = Date(), reusingWithin reuse: Double = 0, takenAfter: Double = -.infinity) throws(GridError) -> Pick? {
        let started = Date()
        var lost = 0
        let listStart = GridConnection.monotonicNow()
        var snapshot = try connection.snapshot(reusingWithin: reuse, takenAfter: takenAfter)
        var listMilliseconds = (GridConnection.monotonicNow() - listStart) * 1000
        var relists = 0, walks = 0
        while relists < Self.relistLimit && walks < Self.walkLimit {
            walks += 1
            switch try pick(from: snapshot, listMilliseconds: listMilliseconds, started: started, lost: &lost, now: now) {
            case .picked(let pick): return pick
            case .nothing: return nil
            case .stale(let fresh, let listed):
                snapshot = fresh
                listMilliseconds = 0
                if listed { relists += 1 }
            }
        }
        return nil
    }

    /// Listings one pick may move on to when the one it walks turns out stale.
    static let relistLimit = 4
    /// Walks one pick may make in all, the free ones (a lost claim push's own listing) included:
    /// as many claims as a pick could lose before (`lossesBeforeRelist` × `relistLimit`).
    static let walkLimit = lossesBeforeRelist * relistLimit
    /// How old the newest listing may be for the pick after a task to walk it instead of listing
    /// (`GridConnection.snapshot(reusingWithin:)`). A result push's own listing is taken as it
    /// connects, so it is as old as the push took: on the scale bench's starved host 3 s at the
    /// median. 2 s and 5 s measured side by side (bench/scale.sh, two rounds): 5 s listed 0.17
    /// times per task against 0.57–0.72 and lost 0.1 more claims (a push each): fewer requests.
    static let reuseSeconds = 5.0
    /// Claims lost in a row before a pick lists again: a listing (one read) costs
    /// less than walking on through tasks that other workers took meanwhile (a push each).
    static let lossesBeforeRelist = 3

    /// How a walk of one listing ended.
    private enum Walk {
        case picked(Pick)
        case nothing
        /// The listing was stale (a task it showed queued had finished, or claims kept
        /// being lost): walk this newer one instead of pushing through the rest.
        /// `listed`: a listing was made for it (counted against `relistLimit`); false for one that
        /// came with a push.
        case stale(GridSnapshot, listed: Bool)
    }

    private func pick(from snapshot: GridSnapshot, listMilliseconds: Double, started: Date, lost: inout Int,
                      now: Date) throws(GridError) -> Walk {
        let settings = connection.settings
        let readinessStart = GridConnection.monotonicNow()
        let finished = snapshot.finishedTaskIDs
        let claims = GridClaims(connection: connection)
        // Tasks whose claim binds now: counted as running by the quota book.
        var live: Set<String> = []
        let freshFor = Self.claimFreshSeconds(settings)
        let monotonicNow = GridConnection.monotonicNow()
        // main's queue in claim order, without what has finished or waits on dependencies
        // (docs/ARCHITECTURE.md §10): worked out once per tip of main. Merged in as it is
        // walked: tasks a fold already moved to in_progress/, whose lease may have run out (a handful).
        var running: [QueueCandidate] = []
        for location in Self.inProgressNotQueued(snapshot) where !finished.contains(location.taskID) {
            guard let blob = snapshot.files[location.path] else { continue }
            let header = try connection.queuedHeader(blob)
            running.append(QueueCandidate(location: location, priority: header.priority ?? .normal, createdAt: header.createdAt))
        }
        var walk = QueueOrder.Merged(try connection.orderedQueue(of: snapshot),
                                     QueueOrder.order(running, shardCount: settings.shardCount, ownShards: settings.ownShards),
                                     shardCount: settings.shardCount, ownShards: settings.ownShards)
        // The run each quorum task among the candidates would be claimed as (`ReplicaChoice`).
        var replicas: [String: ReplicaChoice] = [:]
        // This host's reputation policy (`ReputationGate`): work this node may not take is passed over;
        // a claim by a node the policy refuses binds nobody.
        let gate = ReputationGate.of(connection, trust: connection.workerTrust, at: snapshot)
        func gated(_ candidate: QueueCandidate) throws(GridError) -> Bool {
            guard gate != nil, let blob = snapshot.files[candidate.location.path] else { return false }
            let header = try connection.queuedHeader(blob)
            return ReputationGate.isGated(priority: header.priority, quorum: header.quorum)
        }
        /// Whether `claim` binds its task: live, and held by a node this host's reputation policy does not refuse.
        func binds(_ claim: GitOID, _ candidate: QueueCandidate) throws(GridError) -> Bool {
            guard try claims.isLive(claim, now: now) else { return false }
            guard let gate, let holder = try claims.record(at: claim)?.nodeID,
                  let why = try gate.refusal(holder, gated: try gated(candidate)) else { return true }
            onClaimRefused(claim, candidate.taskID, holder, why)
            return false
        }
        /// The next `limit` candidates along the walk that no live claim binds and
        /// that have no result; stale-looking claims among them are read in one fetch.
        func takeable(_ limit: Int) throws(GridError) -> [QueueCandidate] {
            var chunk: [QueueCandidate] = [], suspects: [GitOID] = []
            while chunk.count < limit, let candidate = walk.next() {
                guard snapshot.results[candidate.taskID] == nil else { continue }
                if let gate, try gate.refusal(settings.nodeID, gated: try gated(candidate)) != nil { continue }
                if let blob = snapshot.files[candidate.location.path], let quorum = try connection.queuedHeader(blob).quorum {
                    // A replicated task is claimed run by run; a plain claim on it is a forgery the fold drops.
                    guard snapshot.claims[candidate.taskID] == nil,
                          let choice = try ReplicaChoice.choose(candidate.taskID, quorum: quorum, snapshot: snapshot,
                                                                connection: connection, gate: gate, now: now) else { continue }
                    replicas[candidate.taskID] = choice
                    chunk.append(candidate)
                    continue
                }
                if let claim = snapshot.claims[candidate.taskID] {
                    // Its worker renews a live claim every heartbeat, so a claim
                    // commit listed only moments ago is live: reading it would cost a
                    // fetch per claim per worker. Older ones are read below, in one fetch.
                    guard monotonicNow - connection.firstSeen(claim) >= freshFor else {
                        live.insert(candidate.taskID)
                        continue
                    }
                    suspects.append(claim)
                }
                chunk.append(candidate)
            }
            try connection.prefetch(suspects)
            var free: [QueueCandidate] = []
            for candidate in chunk {
                if let claim = snapshot.claims[candidate.taskID], try binds(claim, candidate) {
                    live.insert(candidate.taskID)
                } else {
                    free.append(candidate)
                }
            }
            return free
        }
        let trust = try trustFor?(snapshot)
        let counted = trust?.trust.policy.hasLedgerQuotas == true
        // With counted limits the book needs every live claim: the whole queue is walked.
        // Without, a pick walks only as far as it tries: a chunk at a time, so a poll on a
        // 10,000-task queue costs its first few candidates, not ten thousand.
        // As many workers as the grid has nodes may be claiming at once: the head they spread
        // over is as wide as the fleet, so two rarely push for one task (at 100 workers over a
        // head of 4, most claim pushes were lost: bench/scale.sh). FIFO holds to within that.
        let window = Self.spreadWindow(nodes: snapshot.nodes.count)
        var tries = Self.spread(try takeable(counted ? Int.max : max(Self.chunk, window)), window: window)
        // Fewer tasks free than the grid has nodes: the queue's last ones, which every worker that
        // comes free races for. One race lost says others are on them: the pick ends there, and the
        // slot polls as an idle one does, at the fleet's share. Walking on, picks in the last seconds
        // lost up to `walkLimit` claims each: at a hundred workers 0.4 Git requests per task (bench/scale.sh).
        let lastTasks = tries.count < min(snapshot.nodes.count, window)
        let book = try trust.flatMap { (check) throws(GridError) -> QuotaBook? in
            counted ? try QuotaBook.build(snapshot: snapshot, connection: connection, check: check, live: live, now: now) : nil
        }
        let readinessEnd = GridConnection.monotonicNow()
        onPollCost(PollCost(listMilliseconds: listMilliseconds, readinessMilliseconds: (readinessEnd - readinessStart) * 1000,
                            queued: snapshot.queue.count, candidates: tries.count))
        if let book {
            // Tasks past a queue limit are rejected first: the newest would otherwise wait behind the very queue they overflow.
            tries = tries.filter { book.refusal(for: $0.taskID) != nil } + tries.filter { book.refusal(for: $0.taskID) == nil }
        }
        var lostInARow = 0
        while !tries.isEmpty {
            for candidate in tries {
                let id = candidate.location.taskID
                let refused = book?.refusal(for: id)
                if let book, refused == nil, let why = book.deferral(for: id) {
                    onDefer(id, why)
                    continue
                }
                let replica = replicas[id]
                let pushing = GridConnection.monotonicNow()
                guard let held = try claims.claim(id, replica: replica?.replica, takingOver: replica.map(\.takingOver) ?? snapshot.claims[id],
                                                  now: now) else {
                    lost += 1
                    lostInARow += 1
                    if lastTasks { return .nothing }
                    // The push that lost was shown every ref (`PushListing`): walking on from that costs
                    // no read, and the tasks other workers took meanwhile are not tried one push each.
                    if let shown = try connection.reusedSnapshot(within: Self.reuseSeconds, takenAfter: pushing) { return .stale(shown, listed: false) }
                    if lostInARow >= Self.lossesBeforeRelist { return .stale(try connection.snapshot(), listed: true) }
                    continue
                }
                lostInARow = 0
                // Renewed by the heartbeat from now on: the checks below may wait on the remote for longer than a lease.
                onClaimed(held)
                do {
                    switch try afterClaim(held, candidate: candidate, snapshot: snapshot, blob: snapshot.files[candidate.location.path],
                                          book: book, trust: trust, started: started, lost: lost, pushed: pushing) {
                    case .picked(let pick): return .picked(pick)
                    case .stale(let fresh, let listed): return .stale(fresh, listed: listed)
                    case .nothing: break
                    }
                } catch {
                    // Unchecked, the task must not run; given back, it need not wait out the lease.
                    _ = try? claims.release(onDropped(id) ?? held, ending: .givenBack, reason: "given back unrun: the grid could not be read after claiming")
                    throw error
                }
            }
            tries = counted ? [] : try takeable(Self.chunk)
        }
        return .nothing
    }

    /// The checks after a won claim, on a listing taken after it: the pick; `nothing` when the
    /// claim was given back (a queue limit) and the next candidate is tried; `stale` with that
    /// listing when the task had finished (withdrawn): the walk's listing is behind the grid.
    /// `pushed`: when the claim push began (monotonic seconds).
    private func afterClaim(_ held: HeldClaim, candidate: QueueCandidate, snapshot: GridSnapshot, blob: GitOID?, book: QuotaBook?,
                            trust: TaskSignatureCheck?, started: Date, lost: Int, pushed: Double) throws(GridError) -> Walk {
        let settings = connection.settings
        let claims = GridClaims(connection: connection)
        let id = held.taskID
        // A ref listing is not atomic: main may have been read before a fold
        // moved it and the claims after the fold deleted the task's refs, so
        // a finished task can look unclaimed. The fold moves main before it
        // deletes refs, so a listing taken after our claim shows the truth:
        // the refs the server advertised to the claim's own push (taken as it
        // began; a fold that ended the task by the time the claim landed had
        // its result ref or its new main there) or any listing taken since, or,
        // when main moved since we fetched it or counted limits need every claim
        // as it is now, a listing.
        let advertised = book == nil ? try connection.reusedSnapshot(within: .infinity, takenAfter: pushed) : nil
        let fresh: GridSnapshot
        if let advertised { fresh = advertised } else { fresh = try connection.snapshot() }
        if fresh.finishedTaskIDs.contains(id) || fresh.results[id] != nil {
            try claims.withdraw(onDropped(id) ?? held)
            return .stale(fresh, listed: advertised == nil)
        }
        let refused = book?.refusal(for: id)
        if let book, refused == nil, let why = book.overAfterClaim(id, fresh: fresh) {
            // Another worker's claim landed meanwhile: ours goes, the task waits (QuotaBook).
            let current = onDropped(id) ?? held
            if snapshot.claims[id] == nil {
                try claims.withdraw(current)
            } else {
                _ = try claims.release(current, ending: .givenBack, reason: "given back unrun: \(why)")
            }
            onDefer(id, why)
            return .nothing
        }
        let elapsed = Int(Date().timeIntervalSince(started) * 1000)
        let bytes: [UInt8]
        do {
            bytes = try blob.map { (blob) throws(GridError) in try connection.blob(blob, limit: settings.limits.maxFileBytes) } ?? []
        } catch {
            // Over the size limit (refused before reading) or a bad object: the task is rejected, not retried forever.
            return .picked(Pick(claim: held, taskBytes: [], unreadable: "task file refused: larger than \(settings.limits.maxFileBytes) bytes or unreadable (\(error))",
                        claimMilliseconds: elapsed, racesLost: lost))
        }
        // The signatures and the grid id, from the listing taken after the claim; only a signed task needs the id.
        var signatures = TaskSignatureFiles()
        for suffix in TaskSignatureFiles.suffixes {
            guard let signatureBlob = fresh.files[candidate.location.path + suffix] else { continue }
            do {
                signatures[suffix] = try connection.blob(signatureBlob, limit: TaskSignatureFiles.maxBytes)
            } catch {
                return .picked(Pick(claim: held, taskBytes: [], unreadable: "signature file refused: larger than \(TaskSignatureFiles.maxBytes) bytes or unreadable (\(candidate.location.path + suffix): \(error))",
                            claimMilliseconds: elapsed, racesLost: lost))
            }
        }
        let grid = signatures.isEmpty ? nil : try GridIdentity.read(fresh, connection: connection)
        return .picked(Pick(claim: held, taskBytes: bytes, signatures: signatures, grid: grid, unreadable: nil, refused: refused,
                            trust: trust, claimMilliseconds: elapsed, racesLost: lost))
    }
}
