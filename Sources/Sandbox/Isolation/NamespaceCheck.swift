import Glibc
import SandboxSupport

/// The namespaces every sandbox gets (docs/ARCHITECTURE.md §2, docs/THREATS.md T4).
public enum NamespaceKind: String, Sendable, CaseIterable {
    case user, pid, mount, net, uts, ipc, cgroup

    /// Its name under /proc/self/ns and in `user.max_<name>_namespaces`.
    var procName: String { self == .mount ? "mnt" : rawValue }

    public var checkID: HostCheckID {
        switch self {
        case .user: .namespaceUser
        case .pid: .namespacePID
        case .mount: .namespaceMount
        case .net: .namespaceNet
        case .uts: .namespaceUTS
        case .ipc: .namespaceIPC
        case .cgroup: .namespaceCgroup
        }
    }

    /// Made by the sandbox's clone(2) (the cgroup namespace is unshared later, once pid 1 is in its group).
    var createdAtClone: Bool { self != .cgroup }

    /// The set-up steps that use it, in order; it works once the last of them is passed.
    var milestones: [SetupMilestone] {
        switch self {
        case .user: [.idMapped]
        case .pid, .ipc: [.cloned]
        case .mount: [.mountNamespace, .rootfs]
        case .net: [.loopback]
        case .uts: [.hostname]
        case .cgroup: [.cgroupNamespace]
        }
    }

    var kernelOption: String {
        switch self {
        case .user: "CONFIG_USER_NS"
        case .pid: "CONFIG_PID_NS"
        case .mount: "CONFIG_NAMESPACES"
        case .net: "CONFIG_NET_NS"
        case .uts: "CONFIG_UTS_NS"
        case .ipc: "CONFIG_IPC_NS"
        case .cgroup: "CONFIG_CGROUPS"
        }
    }

    /// What to do when the kernel refused it in a step of its own.
    var fix: String {
        switch self {
        case .user:
            geteuid() == 0
                ? "check /run/dgrid/idmap (root's own directory) and the dgrid entry of /etc/subuid and /etc/subgid, if any"
                : "check this user's ranges in /etc/subuid and /etc/subgid and that newuidmap and newgidmap are installed setuid (Debian: uidmap)"
        case .mount: "allow mount(2) and pivot_root(2) in a new mount namespace: no seccomp or LSM rule of a surrounding container may forbid them"
        case .net: "allow bringing up loopback in a new network namespace (ioctl SIOCSIFFLAGS)"
        case .uts: "allow sethostname(2) in a new UTS namespace"
        case .cgroup: "allow unshare(CLONE_NEWCGROUP): a seccomp profile or LSM of a surrounding container may forbid it"
        case .pid, .ipc: "allow clone(2) with CLONE_NEWPID and CLONE_NEWIPC"
        }
    }
}

/// `namespace.*`: whether this kernel lets dgrid create each namespace a
/// sandbox gets. The probe sandbox (`SandboxProbe`) creates them for real;
/// /proc/self/ns and the limits in /proc/sys say why when it could not.
public enum NamespaceCheck {
    public static func check(_ kind: NamespaceKind, probe: SandboxProbeReport) -> HostCheck {
        check(kind, probe: probe, paths: .host, rootless: geteuid() != 0)
    }

    package static func check(_ kind: NamespaceKind, probe: SandboxProbeReport, paths: HostPaths, rootless: Bool) -> HostCheck {
        let id = kind.checkID
        var info = stat()
        guard lstat(paths.proc + "/self/ns/" + kind.procName, &info) == 0 else {
            return .fail(id, "this kernel has no \(kind.rawValue) namespaces (\(paths.proc)/self/ns/\(kind.procName) is missing)",
                         fix: "boot a kernel built with \(kind.kernelOption)")
        }
        let last = kind.milestones.last ?? .cloned
        if probe.passed(last) {
            return .pass(id, "created and used by the probe sandbox (\(last.summary))")
        }
        if let refusal = knobRefusal(kind, paths: paths, rootless: rootless) { return refusal }
        // A failed clone is every clone-time namespace's at once: told apart below.
        for milestone in kind.milestones where milestone != .cloned {
            if let error = probe.failure(at: milestone) {
                return .fail(id, "the probe sandbox could not \(milestone.summary): \(error)", fix: kind.fix)
            }
        }
        if kind.createdAtClone, let error = probe.failure(at: .cloned) {
            // One clone(2) makes six namespaces: name the one a limit explains, when one does.
            if let culprit = NamespaceKind.allCases.first(where: { $0.createdAtClone && knobRefusal($0, paths: paths, rootless: rootless) != nil }) {
                return .warn(id, "not created: the probe's clone(2) failed because of the \(culprit.rawValue) namespace (\(error))",
                             fix: "fix \(culprit.checkID.rawValue) first")
            }
            return .fail(id, "clone(2) of the probe sandbox with new user, pid, mount, UTS, IPC and network namespaces failed: \(error)"
                             + (Self.isLimitErrno(error) ? "; a user.max_*_namespaces limit is reached" : "; no limit in \(paths.proc)/sys/user explains it"),
                         fix: "something refuses namespaces to this process (a container's seccomp profile, AppArmor or SELinux): run the worker on the host, or allow clone(2) with namespace flags")
        }
        return probe.notReached(id, before: last, paths: paths, rootless: rootless)
    }

    /// The check to fix first when the probe stopped at `milestone`: for a
    /// failed clone, the namespace a limit explains, when one does.
    package static func checkID(blamedFor milestone: SetupMilestone, paths: HostPaths = .host,
                                rootless: Bool = geteuid() != 0) -> HostCheckID {
        guard milestone == .cloned,
              let culprit = NamespaceKind.allCases.first(where: { $0.createdAtClone && knobRefusal($0, paths: paths, rootless: rootless) != nil })
        else { return milestone.checkID }
        return culprit.checkID
    }

    private static func isLimitErrno(_ error: SandboxError) -> Bool {
        if case .spawn(let code) = error { return code == ENOSPC || code == EUSERS }
        return false
    }

    /// A knob in /proc/sys that refuses this namespace outright.
    static func knobRefusal(_ kind: NamespaceKind, paths: HostPaths, rootless: Bool) -> HostCheck? {
        let id = kind.checkID
        let name = "user.max_\(kind.procName)_namespaces"
        if let text = paths.read(paths.proc + "/sys/user/max_\(kind.procName)_namespaces"), Int(text) == 0 {
            return .fail(id, "\(name) is 0 here: no \(kind.rawValue) namespace can be created",
                         fix: "sysctl -w \(name)=15000 (and keep it in /etc/sysctl.d/)")
        }
        guard kind == .user, rootless else { return nil }
        if paths.read(paths.proc + "/sys/kernel/unprivileged_userns_clone") == "0" {
            return .fail(id, "kernel.unprivileged_userns_clone is 0: users other than root cannot create user namespaces",
                         fix: "sysctl -w kernel.unprivileged_userns_clone=1, or run the worker as root")
        }
        if paths.read(paths.proc + "/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" {
            return .fail(id, "kernel.apparmor_restrict_unprivileged_userns is 1: AppArmor denies user namespaces to unconfined programs",
                         fix: "give the dgrid binaries an AppArmor profile with `userns,`, or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
        }
        return nil
    }
}

extension SetupMilestone {
    /// The doctor check that reports on this step, for "fix X first".
    public var checkID: HostCheckID {
        switch self {
        case .cgroupCreated, .cgroupJoined: .cgroups
        case .cloned: .namespaceUser
        case .idMapped: .namespaceUser
        case .mountNamespace, .rootfs: .namespaceMount
        case .overlay: .overlay
        case .volumes: .kernel
        case .cgroupNamespace: .namespaceCgroup
        case .hostname: .namespaceUTS
        case .loopback: .namespaceNet
        case .noNewPrivs: .noNewPrivs
        case .seccomp: .seccomp
        case .privileges, .initStarted, .taskExec: .sandbox
        }
    }
}
