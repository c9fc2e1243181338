import Glibc
import Synchronization

/// Tells the service manager how the worker is doing (sd_notify(3)):
/// readiness, a status line, shutdown, and watchdog pings, as datagrams on
/// the Unix socket `$NOTIFY_SOCKET` names. The protocol is a few lines of
/// text, so it is spoken here directly: linking libsystemd would add a shared
/// library (and its own dependencies) to a binary that runs for days, for
/// one `sendto`.
///
/// Nothing here can stop the worker: a socket that cannot be reached costs
/// one warning, and the worker runs on without notifying.
public final class ServiceNotifier: Sendable {
    /// The variables that ask for notifications; removed from the environment
    /// once read, so no helper the worker starts (ssh, gpgv, dgrid-registry)
    /// notifies in its name.
    public static let environmentVariables = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]

    public let address: NotifySocketAddress
    /// nil: the service manager asked for no watchdog pings.
    public let watchdog: ServiceWatchdog?
    private let descriptor: Int32
    private let warn: @Sendable (String) -> Void
    /// The last ping and the last status line sent (monotonic seconds), and
    /// whether a failed send was already reported.
    private let sent = Mutex<(ping: Double?, status: String?, warned: Bool)>((nil, nil, false))

    /// A notifier when `environment` asks for one; nil when it does not, or
    /// when `$NOTIFY_SOCKET` is unusable (then `warn` is told why, once).
    public static func fromEnvironment(_ environment: [String: String], ownPID: Int32 = getpid(),
                                       warn: @escaping @Sendable (String) -> Void) -> ServiceNotifier? {
        guard let value = environment["NOTIFY_SOCKET"] else { return nil }
        let address: NotifySocketAddress
        do {
            address = try NotifySocketAddress(parsing: value)
        } catch {
            warn("not notifying the service manager: \(error)")
            return nil
        }
        var watchdog: ServiceWatchdog?
        do {
            watchdog = try ServiceWatchdog(microseconds: environment["WATCHDOG_USEC"], forPID: environment["WATCHDOG_PID"], ownPID: ownPID)
        } catch {
            warn("\(error)")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            warn("not notifying the service manager: cannot create a Unix datagram socket: \(String(cString: strerror(errno)))")
            return nil
        }
        // A manager too busy to read must not hold the worker's loop: a send waits a second at most.
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return ServiceNotifier(address: address, watchdog: watchdog, descriptor: descriptor, warn: warn)
    }

    /// Removes `environmentVariables` from this process's environment. Call
    /// before the worker starts threads: the environment is not thread-safe.
    public static func clearEnvironment() {
        for name in environmentVariables { unsetenv(name) }
    }

    private init(address: NotifySocketAddress, watchdog: ServiceWatchdog?, descriptor: Int32,
                 warn: @escaping @Sendable (String) -> Void) {
        self.address = address
        self.watchdog = watchdog
        self.descriptor = descriptor
        self.warn = warn
    }

    deinit { close(descriptor) }

    /// Sends `notifications` in one datagram; whether it was delivered. The
    /// first failure is reported, later ones are not (a watchdog ping every
    /// few seconds would otherwise fill the log).
    @discardableResult
    public func send(_ notifications: [ServiceNotification]) -> Bool {
        let datagram = ServiceNotification.datagram(notifications)
        let sent = address.withSocketAddress { socketAddress, length in
            datagram.withUnsafeBytes { bytes in
                var result: Int
                repeat {
                    result = sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                } while result < 0 && errno == EINTR
                return result
            }
        }
        guard sent < 0 else { return true }
        let reason = String(cString: strerror(errno))
        let firstFailure = self.sent.withLock { state in
            defer { state.warned = true }
            return !state.warned
        }
        if firstFailure {
            warn("cannot notify the service manager at \(address): \(reason); the worker runs on without readiness, status or watchdog notifications")
        }
        return false
    }

    /// From the worker's main loop, every turn: a watchdog ping when one is
    /// due, and `status` when it changed — in one datagram, or none. Pinging
    /// only from the loop is the point: a loop that hangs stops the pings, and
    /// the service manager restarts the worker.
    public func pulse(status: String, now: Double) {
        var notifications: [ServiceNotification] = []
        sent.withLock { state in
            if let watchdog, watchdog.isDue(now: now, last: state.ping) {
                notifications.append(.watchdog)
                state.ping = now
            }
            if state.status != status {
                notifications.append(.status(status))
                state.status = status
            }
        }
        if !notifications.isEmpty { send(notifications) }
    }

    /// Readiness, with the first status line; the first watchdog ping too, so
    /// the timer starts from a known point.
    public func ready(status: String, now: Double) {
        var notifications: [ServiceNotification] = [.ready, .status(status)]
        sent.withLock { state in
            state.status = status
            if watchdog != nil {
                notifications.append(.watchdog)
                state.ping = now
            }
        }
        send(notifications)
    }

    /// Shutdown has begun.
    public func stopping(status: String) {
        sent.withLock { $0.status = status }
        send([.stopping, .status(status)])
    }
}

extension NotifySocketAddress: CustomStringConvertible {
    public var description: String {
        switch self {
        case .path(let path): path
        case .abstract(let name): "@" + name
        }
    }
}
