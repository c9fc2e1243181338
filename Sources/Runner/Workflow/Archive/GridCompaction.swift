import Foundation

/// Compaction of main's history (docs/ARCHITECTURE.md §10). libgit2 1.5 fetches
/// no shallow history, so a new worker downloads every commit main ever had;
/// compaction starts main anew from a root commit with the same tree, and keeps
/// the old history under `refs/dgrid-history/main-<time>`, a ref no worker
/// fetches (only ever listed). main moves by compare-and-swap like a fold: a
/// submission or fold racing it is refused and redone on the new root, a plain
/// `git push` based on the old tip is refused as a non-fast-forward — nothing
/// submitted is lost, and the history ref is written before main moves.
public struct GridCompaction {
    let connection: GridConnection

    public init(connection: GridConnection) {
        self.connection = connection
    }

    public static let historyPrefix = "refs/dgrid-history/"
    /// main's commits are counted up to this (a walk of the mirror, ~1 s per million).
    static let countLimit = 10_000_000

    public struct Summary: Sendable, CustomStringConvertible {
        /// main's commits before (counted up to the threshold asked for).
        public var commits = 0
        public var historyRef: String?
        public var threshold = 0

        public var description: String {
            guard let historyRef else { return "nothing to compact: main has \(commits) commit\(commits == 1 ? "" : "s") (compacts from \(threshold))" }
            return "main starts anew with the same files; its \(commits)\(commits >= GridCompaction.countLimit ? "+" : "") earlier commits are kept under \(historyRef)"
        }
    }

    /// Compacts when main has at least `minimumCommits` commits (1 = always) and
    /// was not compacted within `notWithin` seconds. `countAll`: count every
    /// commit for the summary (a person asked), else stop at the threshold (a worker's check).
    public func run(minimumCommits: Int, notWithin: TimeInterval = 0, countAll: Bool = true, now: Date = Date(),
                    attempts: Int = 8) throws(GridError) -> Summary {
        let threshold = max(1, minimumCommits)
        var backoff = ContentionBackoff()
        for attempt in 0..<attempts {
            if attempt > 0 { backoff.wait() }
            let snapshot = try connection.snapshot()
            guard let main = snapshot.mainTip else { throw .notInitialised(repository: connection.repositoryInUse) }
            let (commits, taken) = try connection.withLedger { (ledger) throws(LedgerError) in
                (try ledger.commitCount(from: main, limit: countAll ? Self.countLimit : threshold),
                 try ledger.remoteRefs(prefix: Self.historyPrefix))
            }
            if notWithin > 0, let last = Self.lastCompaction(Array(taken.keys)), now.timeIntervalSince(last) < notWithin {
                return Summary(commits: commits, historyRef: nil, threshold: threshold)
            }
            var summary = Summary(commits: commits, historyRef: nil, threshold: threshold)
            // A root already: nothing to drop.
            guard commits >= threshold, commits > 1 else { return summary }
            // Two compactions within a second (a retry, a second folder) get names of their own.
            var history = Self.historyPrefix + "main-" + Self.stamp(now)
            var number = 1
            while taken[history] != nil {
                number += 1
                history = Self.historyPrefix + "main-" + Self.stamp(now) + "-\(number)"
            }
            let message = "dgrid compact: main starts anew here, with the same files; its earlier history is kept under \(history)"
            let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
                let root = try ledger.rootCommit(withTreeOf: main, message: message)
                // First the history, so that main never moves with its past unkept.
                guard case .applied = try ledger.createRef(history, target: main) else {
                    return .rejected(reason: "\(history) already exists")
                }
                let moved = try ledger.replaceRef(GridConnection.mainRef, from: main, to: root)
                if moved != .applied {
                    // main moved on (a fold, a submission): its history is main's again; drop the extra ref.
                    _ = try? ledger.deleteRef(history, expected: main)
                }
                return moved
            }
            if outcome == .applied {
                summary.historyRef = history
                return summary
            }
        }
        throw .contention(operation: "compact", attempts: attempts)
    }

    /// `20261204T101500Z`: sortable, valid in a ref name.
    static func stamp(_ date: Date) -> String {
        ISOTime.string(date).filter { $0 != "-" && $0 != ":" }
    }

    /// When main was last compacted, from the history refs' names (listed, never fetched); nil when never.
    static func lastCompaction(_ refs: [String]) -> Date? {
        refs.compactMap { name -> Date? in
            guard name.hasPrefix(historyPrefix + "main-") else { return nil }
            let stamp = Array(name.dropFirst((historyPrefix + "main-").count).utf8.prefix(16))
            guard stamp.count == 16 else { return nil }
            var text = ""
            for (i, byte) in stamp.enumerated() {
                if i == 4 || i == 6 { text += "-" }
                if i == 11 || i == 13 { text += ":" }
                text.append(Character(UnicodeScalar(byte)))
            }
            return ISOTime.parse(text)
        }.max()
    }
}
