import Foundation

/// Chooses the next task to claim (DESIGN §6–7): queued on main, not
/// finished, no published result, and either unclaimed or claimed under a
/// lease that has run out; ordered by priority, then FIFO, own shards first.
struct TaskPicker {
    let connection: GridConnection

    struct Pick {
        let claim: HeldClaim
        let taskBytes: [UInt8]
    }

    /// Workers reading the same queue would all race for its head, and all
    /// but one lose a push per task. Trying the first few of the top priority
    /// in a random order keeps FIFO to within a handful of tasks and spreads
    /// the claims; priority order is never broken.
    static func spread(_ ordered: [QueueCandidate], window: Int = 4) -> [QueueCandidate] {
        guard let top = ordered.first?.priority else { return ordered }
        let head = ordered.prefix { $0.priority == top }.prefix(window)
        return head.shuffled() + ordered.dropFirst(head.count)
    }

    /// Claims the first task it can win; nil when nothing is claimable now.
    func next(now: Date = Date()) throws(GridError) -> Pick? {
        let settings = connection.settings
        let snapshot = try connection.snapshot()
        let finished = snapshot.finishedTaskIDs
        let claims = GridClaims(connection: connection)
        var candidates: [QueueCandidate] = []
        var bytesByPath: [String: [UInt8]] = [:]
        for location in snapshot.queue where !finished.contains(location.taskID) && snapshot.results[location.taskID] == nil {
            if let claim = snapshot.claims[location.taskID], try claims.isLive(claim, now: now) { continue }
            guard let blob = snapshot.files[location.path] else { continue }
            // One byte over the limit is enough to know the task is refused.
            let bytes = try connection.blob(blob, limit: settings.limits.maxFileBytes + 1)
            bytesByPath[location.path] = bytes
            let parsed = try? TaskParser.parse(bytes, limits: settings.limits).get()
            candidates.append(QueueCandidate(location: location, priority: location.priority ?? parsed?.priority ?? .normal,
                                             createdAt: parsed?.createdAt ?? ""))
        }
        let ordered = QueueOrder.order(candidates, shardCount: settings.shardCount, ownShards: settings.ownShards)
        for candidate in Self.spread(ordered) {
            let id = candidate.location.taskID
            guard let held = try claims.claim(id, takingOver: snapshot.claims[id], now: now) else { continue }
            // A ref listing is not atomic: main may have been read before a fold
            // moved it and the claims after the fold deleted the task's refs, so
            // a finished task can look unclaimed. The fold moves main before it
            // deletes refs, so a listing taken after our claim shows the truth.
            let fresh = try connection.snapshot()
            if fresh.finishedTaskIDs.contains(id) || fresh.results[id] != nil {
                try claims.release(held)
                continue
            }
            return Pick(claim: held, taskBytes: bytesByPath[candidate.location.path] ?? [])
        }
        return nil
    }
}
