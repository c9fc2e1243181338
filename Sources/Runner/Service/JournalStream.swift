import Glibc
import Logging

/// Whether standard error goes to systemd's journal, and how a line tells the
/// journal its priority. systemd sets `$JOURNAL_STREAM` to the `device:inode`
/// of the stream it connected (systemd.exec(5)); comparing it with what
/// stderr really is keeps a variable inherited by a process whose stderr was
/// redirected elsewhere from changing that process's log format.
public enum JournalStream {
    /// True when `journalStream` (the variable's value) names `descriptor`.
    public static func isConnected(_ descriptor: Int32 = STDERR_FILENO, journalStream: String?) -> Bool {
        guard let journalStream, let identity = identity(parsing: journalStream) else { return false }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return false }
        return UInt64(status.st_dev) == identity.device && UInt64(status.st_ino) == identity.inode
    }

    /// `device:inode`, both decimal, as systemd writes them.
    static func identity(parsing value: String) -> (device: UInt64, inode: UInt64)? {
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
        return (device, inode)
    }

    /// The `<N>` prefix (sd-daemon(3)) the journal reads as the line's syslog
    /// priority and strips: `journalctl -p warning` then finds the worker's
    /// warnings, and the line itself keeps dgrid's plain format.
    public static func priorityPrefix(_ level: Logger.Level) -> String {
        let priority = switch level {
        case .trace, .debug: 7   // LOG_DEBUG
        case .info: 6            // LOG_INFO
        case .notice: 5          // LOG_NOTICE
        case .warning: 4         // LOG_WARNING
        case .error: 3           // LOG_ERR
        case .critical: 2        // LOG_CRIT
        }
        return "<\(priority)>"
    }
}
