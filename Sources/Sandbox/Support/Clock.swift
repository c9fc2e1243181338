import Glibc
import Synchronization

package enum Clock {
    package static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    package static func monotonicMilliseconds() -> Double {
        Double(monotonicNanoseconds()) / 1e6
    }
}

/// A process-wide counter for unique names.
package final class Counter: Sendable {
    private let value = Atomic<UInt64>(0)

    package init() {}

    package func next() -> UInt64 {
        value.add(1, ordering: .relaxed).newValue
    }
}
