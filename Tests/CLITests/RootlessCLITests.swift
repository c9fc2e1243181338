import Foundation
import Testing
import TestSupport

/// dgrid run by an unprivileged host user: a user namespace maps the task's
/// uid to that user; without a delegated cgroup it refuses unless told to run
/// without limits, and then says which limits were not enforced.
@Suite(.system, .serialized, .enabled(if: getuid() == 0, "needs root to switch to an unprivileged user"))
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

    /// A user the test creates, with subordinate ids from useradd: the task then
    /// runs as a host uid of its own, and container root is not the invoking user.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/newuidmap")))
    func subordinateRangesGiveTheTaskItsOwnHostIDs() throws {
        let user = try RootlessUser()  // created for this test, removed after it
        defer { user.remove() }
        let (uid, gid, start) = (user.uid, user.gid, user.subordinateStart)

        let r = try CLI.run(["sandbox", "run", "--rootfs", try CLI.rootfs(), "--no-cgroup-limits", "--",
                             "sh", "-c", "id -u; id -G; cat /proc/self/uid_map"], as: (uid, gid))
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines.count == 3)
        #expect(lines.first == "1000")
        #expect(lines.dropFirst().first == "1000", "supplementary groups cleared")
        // Only the subordinate range: the invoking user, who owns the state
        // directory and any token file, is no id in the sandbox, not even root's.
        #expect(lines.last == "0 \(start) 65536")
        #expect(!lines.contains { $0.split(separator: " ").dropFirst().first == "\(uid)" })
    }

    /// A one-id mapping must deny setgroups, so the user's supplementary
    /// groups would follow the task in: refused, nothing run.
    @Test func supplementaryGroupsAreRefusedWithAOneIDMapping() throws {
        let marker = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-groups-\(UUID().uuidString.prefix(8))")
        let r = try ProcessRunner.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--groups=100", "--",
                                                          CLI.binary, "sandbox", "run", "--rootfs", try CLI.rootfs(),
                                                          "--", "sh", "-c", "touch \(marker)"])
        #expect(r.status == 125)
        #expect(r.stderr.contains("supplementary groups (100)") && r.stderr.contains("/etc/subuid"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func aUserOutsideTheMappingIsRefused() throws {
        // nobody has no subordinate ids: only the one mapped id exists, any id fits it.
        let r = try CLI.run(["sandbox", "run", "--rootfs", try CLI.rootfs(), "--no-cgroup-limits", "--user", "5:5", "--", "id", "-u"],
                            as: nobody)
        #expect(r.status == 0)
        #expect(r.stdout == "5\n")
    }
}
