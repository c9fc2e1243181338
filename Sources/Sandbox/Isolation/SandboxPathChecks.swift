import Glibc
import SandboxSupport

/// `kernel`: a release new enough for the spawn path. Linux 5.12 brought
/// mount_setattr(2) and idmapped mounts, which every sandbox's root uses
/// (dgrid_tree_clone, the rootless volume clone); 5.11 overlay's `userxattr`.
/// A root worker gives every task an idmapped tmpfs (`/output`), which came
/// in 6.3 — unless the probe mounted one anyway (a backport).
public enum KernelCheck {
    public static let minimum = KernelVersion(major: 5, minor: 12)
    public static let minimumForRootVolumes = KernelVersion(major: 6, minor: 3)

    /// "5.12", as people write kernel versions.
    static func shown(_ version: KernelVersion) -> String { "\(version.major).\(version.minor)" }

    public static func check(probe: SandboxProbeReport) -> HostCheck {
        var name = utsname()
        guard uname(&name) == 0 else {
            return .warn(.kernel, "uname(2) failed: \(errnoText(errno))", fix: "none needed if the namespace checks pass")
        }
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return check(release: release, machine: machine, root: geteuid() == 0, probe: probe)
    }

    package static func check(release: String, machine: String, root: Bool, probe: SandboxProbeReport) -> HostCheck {
        guard let version = KernelVersion(release) else {
            return .warn(.kernel, "cannot read the kernel version from \(UntrustedText.quoted(release))",
                         fix: "none needed if the namespace checks pass")
        }
        if version < minimum {
            return .fail(.kernel, "Linux \(release) (\(machine)) is older than \(shown(minimum)): no mount_setattr(2) for idmapped mounts",
                         fix: "boot Linux \(shown(minimum)) or later (Debian 12's bookworm-backports kernel, or Debian 13)")
        }
        if root, version < minimumForRootVolumes, !probe.passed(.volumes) {
            return .fail(.kernel, "Linux \(release) (\(machine)): a root worker gives each task an idmapped tmpfs (/output), which needs \(shown(minimumForRootVolumes))"
                             + (probe.failure(at: .volumes).map { " (\($0))" } ?? ""),
                         fix: "boot Linux \(shown(minimumForRootVolumes)) or later, or run the worker rootless")
        }
        return .pass(.kernel, "Linux \(release) (\(machine)); dgrid needs \(shown(minimum)), \(shown(minimumForRootVolumes)) for a root worker's task volumes")
    }
}

/// `overlay`: an image's layers become one overlay mount inside the sandbox's
/// own user namespace (`userxattr`, docs/ARCHITECTURE.md §5). Where the kernel
/// refuses it the worker still runs, from a copy of the layers per run — slow
/// and disk-hungry, so a warning.
public enum OverlayCheck {
    public static func check(probe: SandboxProbeReport) -> HostCheck { check(probe: probe, paths: .host) }

    package static func check(probe: SandboxProbeReport, paths: HostPaths) -> HostCheck {
        if probe.passed(.overlay) {
            return .pass(.overlay, "the probe sandbox mounted an overlay of 2 layers inside its user namespace (userxattr)")
        }
        let registered = (paths.read(paths.proc + "/filesystems") ?? "").split(separator: "\n")
            .contains { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).last == "overlay" }
        if !registered {
            return .fail(.overlay, "the kernel has no overlay filesystem (not in \(paths.proc)/filesystems)",
                         fix: "modprobe overlay, and list it in /etc/modules-load.d/ (or boot a kernel with CONFIG_OVERLAY_FS)")
        }
        if let error = probe.failure(at: .overlay) {
            return .warn(.overlay, "the kernel refused an overlay inside a user namespace (\(error)); the worker would copy each image's layers for every run instead",
                         fix: "Linux 5.11 or later, with $DGRID_HOME on a filesystem overlay takes as a lower layer (ext4, xfs, btrfs)")
        }
        return probe.notReached(.overlay, before: .overlay, paths: paths)
    }
}

/// `no_new_privs`: every sandbox's pid 1 sets PR_SET_NO_NEW_PRIVS before it
/// execs dgrid-init, so no setuid file in an image raises a task's privileges.
public enum NoNewPrivsCheck {
    public static func check(probe: SandboxProbeReport) -> HostCheck {
        if probe.passed(.noNewPrivs) {
            return .pass(.noNewPrivs, "set by the probe sandbox before it started dgrid-init: setuid files in images gain nothing")
        }
        if let error = probe.failure(at: .noNewPrivs) {
            return .fail(.noNewPrivs, "the probe sandbox could not set no_new_privs: \(error)",
                         fix: "allow prctl(PR_SET_NO_NEW_PRIVS): a seccomp filter or LSM around this process refuses it")
        }
        return probe.notReached(.noNewPrivs, before: .noNewPrivs)
    }
}

/// `sandbox`: the whole spawn path in one run — what a task gets, minus the task.
public enum SandboxPathCheck {
    public static func check(probe: SandboxProbeReport) -> HostCheck {
        guard let first = probe.runs.first else {
            return .fail(.sandbox, "no probe sandbox could be prepared: \(probe.unavailable ?? "unknown reason")",
                         fix: "fix state_directory first")
        }
        if first.failure == nil {
            return .pass(.sandbox, "a sandbox was set up through every step to its task's exec ("
                             + (first.withLimits ? "with cgroup limits, " : "without cgroup limits, ")
                             + (first.exercised.contains(.volumes) ? "a task volume, " : "")
                             + (first.exercised.contains(.seccomp) ? "the default seccomp profile" : "no seccomp filter") + ")")
        }
        let failedAt = first.failedAt ?? .taskExec
        if let later = probe.runs.dropFirst().first(where: { $0.failure == nil }) {
            let without = [later.withLimits == first.withLimits ? nil : "cgroup limits", later.overlay == first.overlay ? nil : "an overlay root"]
                .compactMap { $0 }.joined(separator: " and ")
            return .warn(.sandbox, "a sandbox was set up only without \(without): with them it failed at \(failedAt.summary) (\(first.failure.map { "\($0)" } ?? ""))",
                         fix: "see \(NamespaceCheck.checkID(blamedFor: failedAt).rawValue)")
        }
        // Each later run left out what stopped the one before it: the last one's stop is what remains.
        let last = probe.runs.last ?? first
        let lastAt = last.failedAt ?? .taskExec
        var detail = "the probe sandbox failed at \(lastAt.summary): \(last.failure.map { "\($0)" } ?? "")"
        if probe.runs.count > 1 { detail += " (first at \(failedAt.summary): \(first.failure.map { "\($0)" } ?? ""))" }
        return .fail(.sandbox, detail,
                     fix: lastAt.checkID == .sandbox ? "reinstall dgrid with dgrid-init beside it; if that does not help, report this line"
                        : "see \(NamespaceCheck.checkID(blamedFor: lastAt).rawValue)")
    }
}
