import Sandbox

/// One assignment of the service manager's notification protocol
/// (sd_notify(3)); a datagram carries one or more, a line each.
public enum ServiceNotification: Equatable, Sendable {
    /// Started and synced with the grid: systemd's `Type=notify` start is done.
    case ready
    /// Shutting down (SIGTERM): running tasks get their grace period.
    case stopping
    /// The line `systemctl status` shows.
    case status(String)
    /// "Still alive": resets the watchdog's timer.
    case watchdog

    public var line: String {
        switch self {
        case .ready: "READY=1"
        case .stopping: "STOPPING=1"
        // Reasons carry task ids and server text: one inert line, or the next
        // line of it would be read as an assignment of its own.
        case .status(let text): "STATUS=" + UntrustedText.lineSafe(text)
        case .watchdog: "WATCHDOG=1"
        }
    }

    /// The datagram for `notifications`.
    static func datagram(_ notifications: [ServiceNotification]) -> [UInt8] {
        Array(notifications.map(\.line).joined(separator: "\n").utf8)
    }
}
