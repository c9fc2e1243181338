import CShims
import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// `dgrid doctor`'s kernel checks read as a broken kernel would make them
/// (docs/ARCHITECTURE.md §12, "Doctor"). Two fakes, said here once: a fake
/// `/proc` (and `/etc`) tree handed in through `HostPaths`, the seam only
/// tests use — for kernels this host is not (no overlay, no seccomp action,
/// a namespace limit of 0) — and probe reports built from the errors the shim
/// reports (`SandboxError.setup(stage:errno:)`, `.spawn`), for failures the
/// kernel here will not produce on demand. Each check is made to fail and
/// its fix read. The real kernel refusing for real is `DoctorCLITests`'s.
@Suite(.unit) struct DoctorProbeChecksTests {
    /// A /proc as a healthy kernel has it: every namespace, limits, overlay, seccomp.
    final class FakeProc {
        let root: String
        var paths: HostPaths { HostPaths(proc: root + "/proc", sys: root + "/sys", etc: root + "/etc") }

        init() throws {
            root = try TempDir.make(prefix: "dgrid-fake-proc").path
            for directory in ["proc/self/ns", "proc/sys/user", "proc/sys/kernel/seccomp", "etc", "sys"] {
                try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
            }
            for kind in NamespaceKind.allCases {
                write("proc/self/ns/\(kind.procName)", "")
                write("proc/sys/user/max_\(kind.procName)_namespaces", "96369\n")
            }
            write("proc/filesystems", "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n")
            write("proc/self/status", "Name:\tdgrid-grid\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n")
            write("proc/sys/kernel/seccomp/actions_avail", "kill_process kill_thread trap errno user_notif trace log allow\n")
        }

        func write(_ relative: String, _ text: String) {
            FileManager.default.createFile(atPath: root + "/" + relative, contents: Data(text.utf8))
        }

        func remove(_ relative: String) {
            try? FileManager.default.removeItem(atPath: root + "/" + relative)
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }
    }

    static let everything = Set(SetupMilestone.allCases)
    /// A probe that reached the task's exec.
    static let healthy = SandboxProbeReport(runs: [SandboxProbeRun(overlay: true, withLimits: true, exercised: everything, failure: nil)])

    /// A probe whose one run failed with `error`.
    static func failed(_ error: SandboxError, overlay: Bool = true) -> SandboxProbeReport {
        SandboxProbeReport(runs: [SandboxProbeRun(overlay: overlay, withLimits: true, exercised: everything, failure: error)])
    }

    static func stage(_ stage: dgrid_stage, _ code: Int32) -> SandboxError {
        .setup(stage: Int32(stage.rawValue), errno: code)
    }

    // MARK: namespaces

    @Test(arguments: NamespaceKind.allCases)
    func eachNamespacePassesWhenTheProbeUsedIt(kind: NamespaceKind) throws {
        let proc = try FakeProc()
        let check = NamespaceCheck.check(kind, probe: Self.healthy, paths: proc.paths, rootless: false)
        #expect(check.id == kind.checkID)
        #expect(check.status == .pass, "\(check)")
    }

    /// `user.max_<ns>_namespaces = 0`: the probe's clone fails with ENOSPC, and the limit names the namespace.
    @Test(arguments: NamespaceKind.allCases)
    func aLimitOfZeroFailsThatNamespaceWithTheSysctl(kind: NamespaceKind) throws {
        let proc = try FakeProc()
        proc.write("proc/sys/user/max_\(kind.procName)_namespaces", "0\n")
        let probe = kind.createdAtClone ? Self.failed(.spawn(errno: ENOSPC)) : Self.failed(Self.stage(DGRID_STAGE_UNSHARE_CGROUP, ENOSPC))
        let check = NamespaceCheck.check(kind, probe: probe, paths: proc.paths, rootless: false)
        #expect(check.status == .fail, "\(check)")
        #expect(check.detail.contains("user.max_\(kind.procName)_namespaces is 0"), "\(check.detail)")
        #expect(check.fix == "sysctl -w user.max_\(kind.procName)_namespaces=15000 (and keep it in /etc/sysctl.d/)")
        // The other namespaces of the same clone were not created because of it: they say so, and point here.
        guard kind.createdAtClone else { return }
        for other in NamespaceKind.allCases where other != kind && other.createdAtClone {
            let bystander = NamespaceCheck.check(other, probe: probe, paths: proc.paths, rootless: false)
            #expect(bystander.status == .warn, "\(bystander)")
            #expect(bystander.fix == "fix \(kind.checkID.rawValue) first", "\(bystander)")
        }
    }

    @Test(arguments: NamespaceKind.allCases)
    func aKernelWithoutTheNamespaceFailsWithItsConfigOption(kind: NamespaceKind) throws {
        let proc = try FakeProc()
        proc.remove("proc/self/ns/\(kind.procName)")
        let check = NamespaceCheck.check(kind, probe: Self.healthy, paths: proc.paths, rootless: false)
        #expect(check.status == .fail)
        #expect(check.detail.contains("has no \(kind.rawValue) namespaces"), "\(check.detail)")
        #expect(check.fix == "boot a kernel built with \(kind.kernelOption)")
    }

    @Test func aCloneRefusedWithNoLimitSetBlamesASurroundingFilter() throws {
        let proc = try FakeProc()
        let check = NamespaceCheck.check(.user, probe: Self.failed(.spawn(errno: EPERM)), paths: proc.paths, rootless: false)
        #expect(check.status == .fail)
        #expect(check.detail.contains("no limit in"), "\(check.detail)")
        #expect(check.fix?.contains("seccomp profile") == true)
    }

    @Test func rootlessUserNamespacesOffByDebianOrAppArmorFail() throws {
        let proc = try FakeProc()
        proc.write("proc/sys/kernel/unprivileged_userns_clone", "0\n")
        let debian = NamespaceCheck.check(.user, probe: Self.failed(.spawn(errno: EPERM)), paths: proc.paths, rootless: true)
        #expect(debian.status == .fail)
        #expect(debian.fix == "sysctl -w kernel.unprivileged_userns_clone=1, or run the worker as root")
        // Root is not subject to it.
        #expect(NamespaceCheck.check(.user, probe: Self.failed(.spawn(errno: EPERM)), paths: proc.paths, rootless: false).fix?.contains("unprivileged_userns_clone") != true)

        proc.write("proc/sys/kernel/unprivileged_userns_clone", "1\n")
        proc.write("proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1\n")
        let apparmor = NamespaceCheck.check(.user, probe: Self.failed(.spawn(errno: EACCES)), paths: proc.paths, rootless: true)
        #expect(apparmor.status == .fail)
        #expect(apparmor.fix?.contains("apparmor_restrict_unprivileged_userns=0") == true, "\(apparmor)")
    }

    /// Each namespace's own step failing, as the shim reports it.
    @Test(arguments: [
        (NamespaceKind.cgroup, DGRID_STAGE_UNSHARE_CGROUP, "allow unshare(CLONE_NEWCGROUP)"),
        (NamespaceKind.mount, DGRID_STAGE_PIVOT_ROOT, "pivot_root(2)"),
        (NamespaceKind.net, DGRID_STAGE_LOOPBACK, "loopback"),
        (NamespaceKind.uts, DGRID_STAGE_HOSTNAME, "sethostname(2)"),
    ])
    func aStepOfTheNamespaceFailingFailsIt(kind: NamespaceKind, stage: dgrid_stage, fix: String) throws {
        let proc = try FakeProc()
        let check = NamespaceCheck.check(kind, probe: Self.failed(Self.stage(stage, EPERM)), paths: proc.paths, rootless: false)
        #expect(check.status == .fail, "\(check)")
        #expect(check.detail.contains(String(cString: dgrid_stage_name(Int32(stage.rawValue)))), "\(check.detail)")
        #expect(check.fix?.contains(fix) == true, "\(String(describing: check.fix))")
    }

    @Test func aNamespaceTheProbeNeverReachedSaysWhereItStopped() throws {
        let proc = try FakeProc()
        let check = NamespaceCheck.check(.cgroup, probe: Self.failed(Self.stage(DGRID_STAGE_MOUNT_PRIVATE, EPERM)), paths: proc.paths, rootless: false)
        #expect(check.status == .warn)
        #expect(check.detail.hasPrefix("not reached"), "\(check.detail)")
        #expect(check.fix == "fix namespace.mount first")
    }

    // MARK: the other probe checks

    @Test func noOverlayInTheKernelFailsWithModprobe() throws {
        let proc = try FakeProc()
        proc.write("proc/filesystems", "nodev\tsysfs\n\text4\n")
        let check = OverlayCheck.check(probe: Self.failed(Self.stage(DGRID_STAGE_MOUNT_OVERLAY, ENODEV)), paths: proc.paths)
        #expect(check.status == .fail)
        #expect(check.fix?.hasPrefix("modprobe overlay") == true)
    }

    @Test func anOverlayRefusedInAUserNamespaceWarnsOfTheCopyFallback() throws {
        let proc = try FakeProc()
        let check = OverlayCheck.check(probe: Self.failed(Self.stage(DGRID_STAGE_MOUNT_OVERLAY, EINVAL)), paths: proc.paths)
        #expect(check.status == .warn)
        #expect(check.detail.contains("copy each image's layers"), "\(check.detail)")
        #expect(check.fix?.contains("Linux 5.11") == true)
        #expect(OverlayCheck.check(probe: Self.healthy, paths: proc.paths).status == .pass)
    }

    @Test func kernelVersions() {
        let old = KernelCheck.check(release: "5.10.0-28-amd64", machine: "x86_64", root: false, probe: Self.healthy)
        #expect(old.status == .fail && old.detail.contains("older than 5.12") && old.fix?.contains("Linux 5.12") == true, "\(old)")
        var withoutVolumes = Self.everything
        withoutVolumes.remove(.volumes)
        let noVolumes = SandboxProbeReport(runs: [SandboxProbeRun(overlay: true, withLimits: true, exercised: withoutVolumes, failure: nil)])
        let rootOn61 = KernelCheck.check(release: "6.1.0-18-amd64", machine: "x86_64", root: true, probe: noVolumes)
        #expect(rootOn61.status == .fail && rootOn61.detail.contains("idmapped tmpfs"), "\(rootOn61)")
        // A backport that mounted the volume anyway passes; rootless needs only 5.12.
        #expect(KernelCheck.check(release: "6.1.0-18-amd64", machine: "x86_64", root: true, probe: Self.healthy).status == .pass)
        #expect(KernelCheck.check(release: "6.1.0", machine: "x86_64", root: false, probe: noVolumes).status == .pass)
        #expect(KernelCheck.check(release: "garbage", machine: "x86_64", root: true, probe: Self.healthy).status == .warn)
    }

    @Test func seccompMissingFromTheKernelOrRefusedFails() throws {
        let proc = try FakeProc()
        let compiled = Result<SeccompFilter, SeccompError>.success(SeccompFilter(instructions: [sock_filter(code: 6, jt: 0, jf: 0, k: 0x7fff_0000)]))
        #expect(SeccompCheck.check(compiled: compiled, probe: Self.healthy, paths: proc.paths).status == .pass)

        proc.write("proc/sys/kernel/seccomp/actions_avail", "kill_process kill_thread trap allow\n")
        let noErrno = SeccompCheck.check(compiled: compiled, probe: Self.healthy, paths: proc.paths)
        #expect(noErrno.status == .fail && noErrno.detail.contains("lacks the action(s) errno"), "\(noErrno)")

        proc.write("proc/self/status", "Name:\tdgrid-grid\nNoNewPrivs:\t0\n")
        let none = SeccompCheck.check(compiled: compiled, probe: Self.healthy, paths: proc.paths)
        #expect(none.status == .fail && none.fix?.contains("CONFIG_SECCOMP") == true, "\(none)")

        let healthy = try FakeProc()
        let refused = SeccompCheck.check(compiled: compiled, probe: Self.failed(Self.stage(DGRID_STAGE_SECCOMP, EPERM)), paths: healthy.paths)
        #expect(refused.status == .fail && refused.fix?.contains("allow seccomp(2)") == true, "\(refused)")

        let broken = SeccompCheck.check(compiled: .failure(.filterTooLarge(instructions: 5000, limit: 4096)), probe: Self.healthy, paths: healthy.paths)
        #expect(broken.status == .fail && broken.detail.contains("does not compile"), "\(broken)")

        healthy.write("proc/self/status", "Name:\tdgrid-grid\nSeccomp:\t2\n")
        let inherited = SeccompCheck.check(compiled: compiled, probe: Self.healthy, paths: healthy.paths)
        #expect(inherited.status == .pass && inherited.detail.contains("already runs under a seccomp filter"), "\(inherited)")
    }

    @Test func noNewPrivsRefusedFails() {
        let check = NoNewPrivsCheck.check(probe: Self.failed(Self.stage(DGRID_STAGE_NO_NEW_PRIVS, EPERM)))
        #expect(check.status == .fail)
        #expect(check.fix?.contains("PR_SET_NO_NEW_PRIVS") == true)
        #expect(NoNewPrivsCheck.check(probe: Self.healthy).status == .pass)
        #expect(NoNewPrivsCheck.check(probe: Self.failed(Self.stage(DGRID_STAGE_PIVOT_ROOT, EPERM))).status == .warn)
    }

    @Test func theWholePathPassesWarnsWhenItWorkedOnlyWithoutAPartAndFails() {
        #expect(SandboxPathCheck.check(probe: Self.healthy).status == .pass)
        let cgroupFirst = SandboxProbeReport(runs: [
            SandboxProbeRun(overlay: true, withLimits: true, exercised: Self.everything, failure: .cgroup(.missingController("pids"))),
            SandboxProbeRun(overlay: true, withLimits: false, exercised: Self.everything, failure: nil),
        ])
        let partial = SandboxPathCheck.check(probe: cgroupFirst)
        #expect(partial.status == .warn && partial.detail.contains("only without cgroup limits") && partial.fix == "see cgroups", "\(partial)")
        let broken = SandboxPathCheck.check(probe: Self.failed(.initProgram(path: "/x/dgrid-init", errno: ENOENT)))
        #expect(broken.status == .fail && broken.fix?.contains("dgrid-init") == true, "\(broken)")
        #expect(SandboxPathCheck.check(probe: SandboxProbeReport(runs: [], unavailable: "no run directory")).status == .fail)
    }

    /// The order the shim takes its steps in (spawn.c's child_main, dgrid-init): a failure passes what came before.
    @Test func stagesMapToStepsInTheOrderTheyRun() {
        let order: [(dgrid_stage, SetupMilestone)] = [
            (DGRID_STAGE_SYNC_WAIT, .idMapped), (DGRID_STAGE_JOIN_CGROUP, .cgroupJoined),
            (DGRID_STAGE_MOUNT_PRIVATE, .mountNamespace), (DGRID_STAGE_MOUNT_OVERLAY, .overlay),
            (DGRID_STAGE_VOLUME, .volumes), (DGRID_STAGE_UNSHARE_CGROUP, .cgroupNamespace),
            (DGRID_STAGE_HOSTNAME, .hostname), (DGRID_STAGE_PIVOT_ROOT, .rootfs), (DGRID_STAGE_LOOPBACK, .loopback),
            (DGRID_STAGE_CAPSET, .privileges), (DGRID_STAGE_NO_NEW_PRIVS, .noNewPrivs), (DGRID_STAGE_EXEC_INIT, .initStarted),
            (DGRID_STAGE_SECCOMP, .seccomp), (DGRID_STAGE_EXEC, .taskExec),
        ]
        for (stage, milestone) in order { #expect(SetupMilestone.milestone(ofStage: Int32(stage.rawValue)) == milestone, "\(stage)") }
        #expect(order.map(\.1) == order.map(\.1).sorted())
        let run = SandboxProbeRun(overlay: true, withLimits: true, exercised: Self.everything, failure: Self.stage(DGRID_STAGE_LOOPBACK, EPERM))
        #expect(run.passed(.hostname) && run.passed(.rootfs) && !run.passed(.loopback) && !run.passed(.seccomp))
        #expect(SetupMilestone.failed(at: .commandNotFound(command: "/x", errno: ENOENT)) == .taskExec)
    }

    // MARK: subordinate ids (a fake /etc)

    @Test func aSubuidFileWithoutTheUsersRangeWarnsWithTheUsermodLine() throws {
        let proc = try FakeProc()
        proc.write("etc/subuid", "bob:100000:65536\n")
        proc.write("etc/subgid", "alice:100000:65536\nbob:165536:65536\n")
        let check = SubordinateIDCheck.check(user: (uid: 4242, name: "alice"), paths: proc.paths,
                                             helpers: .init(usable: true, problem: nil), noNewPrivs: false)
        #expect(check.status == .warn, "\(check)")
        #expect(check.detail.contains("alice has no range in \(proc.root)/etc/subuid"), "\(check.detail)")
        #expect(check.fix?.hasPrefix("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice") == true)
    }

    @Test func subordinateIDProblems() throws {
        let proc = try FakeProc()
        let helpers = SubordinateIDCheck.Helpers(usable: true, problem: nil)
        proc.write("etc/subuid", "alice:100000:65536\n")
        proc.write("etc/subgid", "alice:100000:65536\n")
        #expect(SubordinateIDCheck.check(user: (4242, "alice"), paths: proc.paths, helpers: helpers, noNewPrivs: false).status == .pass)
        let noHelpers = SubordinateIDCheck.check(user: (4242, "alice"), paths: proc.paths,
                                                 helpers: .init(usable: false, problem: "/usr/bin/newuidmap is missing"), noNewPrivs: false)
        #expect(noHelpers.status == .warn && noHelpers.fix == "apt-get install uidmap (newuidmap and newgidmap, setuid root)", "\(noHelpers)")
        let nnp = SubordinateIDCheck.check(user: (4242, "alice"), paths: proc.paths, helpers: helpers, noNewPrivs: true)
        #expect(nnp.status == .warn && nnp.fix?.contains("NoNewPrivileges") == true, "\(nnp)")

        proc.write("etc/subuid", "alice:100000:65536\nbob:130000:65536\n")
        let overlap = SubordinateIDCheck.check(user: (4242, "alice"), paths: proc.paths, helpers: helpers, noNewPrivs: false)
        #expect(overlap.status == .fail && overlap.detail.contains("overlap \"bob\""), "\(overlap)")

        proc.write("etc/subuid", "alice:100000:1000\n")
        let small = SubordinateIDCheck.check(user: (4242, "alice"), paths: proc.paths, helpers: helpers, noNewPrivs: false)
        #expect(small.status == .warn && small.detail.contains("hold 1000 ids"), "\(small)")

        // Root's pool: the default range must not overlap a user's.
        proc.write("etc/subuid", "carol:\(HostIDPool.defaultStart + 5):65536\n")
        proc.write("etc/subgid", "")
        let pool = SubordinateIDCheck.check(user: nil, paths: proc.paths, helpers: helpers, noNewPrivs: false)
        #expect(pool.status == .warn && pool.fix?.contains("dgrid:START:COUNT") == true, "\(pool)")
        proc.write("etc/subuid", "dgrid:300000:100\n")
        let tiny = SubordinateIDCheck.check(user: nil, paths: proc.paths, helpers: helpers, noNewPrivs: false)
        #expect(tiny.status == .warn && tiny.detail.contains("it is ignored"), "\(tiny)")
    }
}
