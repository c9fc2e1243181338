import SandboxSupport

/// `seccomp`: the kernel filters system calls with the actions the default
/// profile uses (`SCMP_ACT_ERRNO` by default, `SCMP_ACT_ALLOW` per rule), the
/// embedded profile compiles with this libseccomp, and the probe sandbox
/// installed it in its task's process before exec (docs/ARCHITECTURE.md §4).
public enum SeccompCheck {
    /// The kernel's names (/proc/sys/kernel/seccomp/actions_avail) of the actions profiles/default.json uses.
    static let neededActions = ["errno", "allow"]

    public static func check(compiled: Result<SeccompFilter, SeccompError>, probe: SandboxProbeReport) -> HostCheck {
        check(compiled: compiled, probe: probe, paths: .host)
    }

    package static func check(compiled: Result<SeccompFilter, SeccompError>, probe: SandboxProbeReport, paths: HostPaths) -> HostCheck {
        let status = paths.read(paths.proc + "/self/status") ?? ""
        guard let mode = field("Seccomp", in: status) else {
            return .fail(.seccomp, "this kernel has no seccomp (no Seccomp line in \(paths.proc)/self/status)",
                         fix: "boot a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER")
        }
        let available = Set((paths.read(paths.proc + "/sys/kernel/seccomp/actions_avail") ?? "").split(separator: " ").map(String.init))
        let missing = neededActions.filter { !available.contains($0) }
        if !missing.isEmpty {
            return .fail(.seccomp, "the kernel's seccomp lacks the action(s) \(missing.joined(separator: ", ")) the default profile uses (\(paths.proc)/sys/kernel/seccomp/actions_avail: \(available.sorted().joined(separator: " ")))",
                         fix: "boot a kernel with CONFIG_SECCOMP_FILTER (Linux 4.14 or later)")
        }
        let filter: SeccompFilter
        switch compiled {
        case .failure(let error):
            return .fail(.seccomp, "the default profile does not compile here: \(error)",
                         fix: "reinstall dgrid (its libseccomp is linked in); if that does not help, report this line")
        case .success(let value):
            filter = value
        }
        // A filter this process already runs under applies to every task as well (it is inherited).
        let inherited = mode == "0" ? "" : "; this process already runs under a seccomp filter (Seccomp: \(mode)), which tasks inherit"
        if probe.passed(.seccomp) {
            return .pass(.seccomp, "the default profile (\(filter.instructions.count) BPF instructions) was installed in the probe sandbox before exec" + inherited)
        }
        if let error = probe.failure(at: .seccomp) {
            return .fail(.seccomp, "the probe sandbox could not install the default profile: \(error)" + inherited,
                         fix: "allow seccomp(2) to this process: a container's own filter or an LSM refuses it")
        }
        if let (step, error) = probe.blocker(before: .seccomp) {
            return .warn(.seccomp, "the default profile compiles (\(filter.instructions.count) BPF instructions); not installed: the probe sandbox stopped earlier, at \(step.summary) (\(error))",
                         fix: "fix \(NamespaceCheck.checkID(blamedFor: step, paths: paths).rawValue) first")
        }
        return .warn(.seccomp, "the default profile compiles; not installed: \(probe.unavailable ?? "no probe sandbox ran")",
                     fix: "fix state_directory first")
    }

    /// The value of a `Name:\tvalue` line of /proc/<pid>/status.
    static func field(_ name: String, in status: String) -> String? {
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return line.dropFirst(name.count + 1).trimmingCharacters(in: " \t")
        }
        return nil
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        return String(drop { characters.contains($0) }.reversed().drop { characters.contains($0) }.reversed())
    }
}
