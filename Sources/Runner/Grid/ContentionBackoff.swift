import Foundation

/// The wait between two compare-and-swap attempts on main that lost to another
/// writer (a submission, a fold, an archive run, a compaction): random within
/// a window that doubles each time, 25 ms at first, capped at 800 ms. Ten
/// submitters racing at once would otherwise retry in lockstep, and the last
/// of them lose every round until its attempts ran out.
struct ContentionBackoff {
    private var window = 0.025

    mutating func wait() {
        Thread.sleep(forTimeInterval: Double.random(in: window / 2...window))
        window = min(window * 2, 0.8)
    }
}
