/// The service manager's watchdog (sd_watchdog_enabled(3)): `$WATCHDOG_USEC`
/// is how long it waits for a `WATCHDOG=1` before it kills the service, and
/// `$WATCHDOG_PID`, when set, says which process it is meant for. Pings are
/// due every half of it, as systemd recommends, so one late loop turn is not
/// yet a kill. The clock is passed in.
public struct ServiceWatchdog: Equatable, Sendable {
    /// Seconds between pings: half of `$WATCHDOG_USEC`.
    public let pingInterval: Double

    /// Why a watchdog setting is ignored; the worker then sends no pings and
    /// says so once (the service manager will kill it if it really wanted them).
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case notANumber(variable: String, value: String)
        case zero

        public var description: String {
            switch self {
            case .notANumber(let variable, let value):
                "\(variable)=\(value) is not a positive whole number of microseconds (or a pid): no watchdog pings"
            case .zero:
                "WATCHDOG_USEC=0 asks for no watchdog: no watchdog pings"
            }
        }
    }

    /// nil when no watchdog is asked of this process: unset, or meant for another pid.
    public init?(microseconds: String?, forPID: String?, ownPID: Int32) throws(Problem) {
        guard let microseconds else { return nil }
        if let forPID, !forPID.isEmpty {
            guard let pid = Int32(forPID), pid > 0 else { throw .notANumber(variable: "WATCHDOG_PID", value: forPID) }
            // Inherited from a parent the watchdog watches: not ours to answer.
            guard pid == ownPID else { return nil }
        }
        guard let usec = UInt64(microseconds) else { throw .notANumber(variable: "WATCHDOG_USEC", value: microseconds) }
        guard usec > 0 else { throw .zero }
        pingInterval = Double(usec) / 2e6
    }

    /// Whether a ping is due at `now` (monotonic seconds) after one at `last`.
    public func isDue(now: Double, last: Double?) -> Bool {
        guard let last else { return true }
        return now - last >= pingInterval
    }
}
