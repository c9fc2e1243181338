import Foundation
import Testing

/// dgrid run by an unprivileged host user: a user namespace maps the task's
/// uid to that user; without a delegated cgroup it refuses unless told to run
/// without limits, and then says which limits were not enforced.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to switch to an unprivileged user"))
struct RootlessCLITests {
    /// `nobody` exists on every Debian system and owns nothing.
    let nobody: (uid: UInt32, gid: UInt32) = (65534, 65534)

    @Test func refusesWithoutCgroupsUnlessAccepted() throws {
        let r = try CLI.run(["sandbox", "run", "--rootfs", try CLI.rootfs(), "--memory", "64m", "--", "true"], as: nobody)
        #expect(r.status == 125)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("--no-cgroup-limits"))
    }

    @Test func runsInAUserNamespaceAndReportsUnenforcedLimits() throws {
        let r = try CLI.run(["sandbox", "run", "--rootfs", try CLI.rootfs(), "--no-cgroup-limits", "--memory", "64m", "--",
                             "sh", "-c", "id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; cat /proc/self/uid_map"],
                            as: nobody)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
        #expect(lines.first == "1000")
        #expect(lines.contains("CapEff: 0000000000000000"))
        #expect(lines.contains("CapBnd: 0000000000000000"))
        #expect(lines.contains("NoNewPrivs: 1"))
        #expect(lines.last == "1000 65534 1")
        #expect(r.stderr.contains("not enforced (no cgroup): memory"))
    }
}
