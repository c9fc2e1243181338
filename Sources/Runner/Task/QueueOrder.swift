/// One queued task as the picker sees it.
public struct QueueCandidate: Equatable, Sendable {
    public let location: QueueLocation
    /// The effective priority (the file's, or the path's when the file says nothing).
    public let priority: TaskPriority
    /// ISO-8601; "" when unknown, which sorts after every time.
    public let createdAt: String

    public init(location: QueueLocation, priority: TaskPriority, createdAt: String) {
        self.location = location
        self.priority = priority
        self.createdAt = createdAt
    }

    public var taskID: String { location.taskID }
}

/// The order in which a worker tries to claim queued tasks.
public enum QueueOrder {
    /// critical > high > normal > low; FIFO by created_at (ISO-8601 strings compare lexically; missing sorts last) then task id.
    /// Tasks in `ownShards` (shard(of:count:) of the id) are preferred only as a tie-break:
    /// within one priority, own-shard tasks come first (FIFO among themselves), then the
    /// others (work stealing). Priority is never overridden by shard: otherwise a busy
    /// grid whose own shards hold low tasks would starve a critical task sitting in a
    /// dead worker's shard.
    public static func order(_ candidates: [QueueCandidate], shardCount: Int, ownShards: Set<Int>) -> [QueueCandidate] {
        let keyed = candidates.map { candidate in
            (candidate, ownShards.contains(ShardPolicy.shard(of: candidate.taskID, count: shardCount)))
        }
        return keyed.sorted { precedes($0, $1) }.map(\.0)
    }

    /// Two lists each already in `order`'s order, walked as one in that order,
    /// building nothing: a picker keeps main's queue ordered once per tip, merges
    /// in the few tasks it may take over, and pays only for the candidates it looks at.
    public struct Merged: IteratorProtocol {
        private let a: [QueueCandidate], b: [QueueCandidate]
        private let shardCount: Int, ownShards: Set<Int>
        private var i = 0, j = 0

        public init(_ a: [QueueCandidate], _ b: [QueueCandidate], shardCount: Int, ownShards: Set<Int>) {
            self.a = a
            self.b = b
            self.shardCount = shardCount
            self.ownShards = ownShards
        }

        public mutating func next() -> QueueCandidate? {
            if i < a.count, j < b.count {
                let ownA = ownShards.contains(ShardPolicy.shard(of: a[i].taskID, count: shardCount))
                let ownB = ownShards.contains(ShardPolicy.shard(of: b[j].taskID, count: shardCount))
                if QueueOrder.precedes((b[j], ownB), (a[i], ownA)) {
                    j += 1
                    return b[j - 1]
                }
            }
            if i < a.count {
                i += 1
                return a[i - 1]
            }
            guard j < b.count else { return nil }
            j += 1
            return b[j - 1]
        }
    }

    /// The one comparison `order` and `Merged` use: (candidate, in an own shard).
    fileprivate static func precedes(_ a: (QueueCandidate, Bool), _ b: (QueueCandidate, Bool)) -> Bool {
        if a.0.priority != b.0.priority { return a.0.priority < b.0.priority }
        if a.1 != b.1 { return a.1 }
        if a.0.createdAt != b.0.createdAt { return earlier(a.0.createdAt, b.0.createdAt) }
        if a.0.taskID != b.0.taskID { return a.0.taskID.utf8.lexicographicallyPrecedes(b.0.taskID.utf8) }
        // Same id twice (flat and sharded copies): a fixed order keeps the result stable.
        return a.0.location.path.utf8.lexicographicallyPrecedes(b.0.location.path.utf8)
    }

    /// Byte-wise comparison of ISO-8601 strings, with "" (unknown) after everything.
    private static func earlier(_ a: String, _ b: String) -> Bool {
        if a.isEmpty { return false }
        if b.isEmpty { return true }
        return a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}
