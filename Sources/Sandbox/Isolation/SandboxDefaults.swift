import SandboxSupport
/// The hardened defaults: runc's masked and read-only paths plus Docker's additions.
public enum SandboxDefaults {
    public static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public static let maskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/proc/interrupts", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]

    public static let readonlyPaths = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]

    /// Candidates for execve: the command itself when it names a path, else each PATH entry.
    static func executableCandidates(command: String, environment: [String]) -> [String] {
        if command.contains("/") { return [command] }
        let pathValue = environment.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) } ?? path
        return pathValue.split(separator: ":", omittingEmptySubsequences: true).map { dir in
            dir.hasSuffix("/") ? "\(dir)\(command)" : "\(dir)/\(command)"
        }
    }

    /// The task's environment: what the spec says, one entry per name (a later
    /// entry wins, so `--env` overrides the image's), plus PATH and HOME when missing.
    static func environment(_ given: [String]) -> [String] {
        var order: [Substring] = []
        var values: [Substring: String] = [:]
        for entry in given {
            let name = entry.prefix(while: { $0 != "=" })
            if values.updateValue(entry, forKey: name) == nil { order.append(name) }
        }
        var env = order.compactMap { values[$0] }
        if values["PATH"] == nil { env.append("PATH=\(path)") }
        if values["HOME"] == nil { env.append("HOME=/") }
        return env
    }
}
