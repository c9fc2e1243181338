import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// What a run leaves on the host is removed whatever the task made of it: a
/// directory chain deeper than the descriptor limit in a writable rootfs's
/// upper, and the run directories of a dgrid that crashed before cleaning up.
@Suite(.system, .serialized) struct RunDirectoryCleanupTests {
    /// Deeper than this process may open descriptors: a removal holding one per
    /// level cannot finish it (clamped so a huge limit does not make a slow test).
    static var deeperThanTheFDLimit: Int {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        return min(max(5000, Int(clamping: limit.rlim_cur) + 1000), 60000)
    }

    /// A fresh directory on tmpfs where there is one: the chains are tens of
    /// thousands of directories, and on a slow disk making and removing them
    /// would take most of the test's time.
    static func scratch(_ prefix: String) throws -> String {
        guard access("/dev/shm", W_OK) == 0 else {
            return try TempDir.make(prefix: prefix).path
        }
        let path = "/dev/shm/\(prefix)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        return path
    }

    /// Descriptors of this process that point at or below `path`.
    static func descriptors(into path: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.compactMap { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd))
                .flatMap { $0.hasPrefix(path) ? $0 : nil }
        }
    }

    /// `depth` nested "d" directories under `parent/name`, made through descriptors
    /// (the path is far past PATH_MAX), with a symlink to `outside` at the bottom.
    static func makeChain(in parent: String, name: String, depth: Int, linkingTo outside: String) throws {
        #expect(mkdir(parent + "/" + name, 0o755) == 0)
        var fd = open(parent + "/" + name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(fd >= 0)
        for _ in 0..<depth {
            try #require(mkdirat(fd, "d", 0o755) == 0)
            let next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            close(fd)
            try #require(next >= 0)
            fd = next
        }
        #expect(symlinkat(outside, fd, "escape") == 0)
        close(fd)
    }

    @Test func aChainDeeperThanTheFDLimitIsRemoved() throws {
        let base = try Self.scratch("dgrid-deep-tree")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let outside = try TempDir.make(prefix: "dgrid-deep-outside").path
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try "keep\n".write(toFile: outside + "/precious", atomically: false, encoding: .utf8)
        try Self.makeChain(in: base, name: "tree", depth: Self.deeperThanTheFDLimit, linkingTo: outside)

        let parent = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(parent >= 0)
        defer { close(parent) }
        #expect(removeTree(in: parent, name: "tree") == 0)
        #expect(!FileManager.default.fileExists(atPath: base + "/tree"))
        #expect(Self.descriptors(into: base + "/tree").isEmpty)
        #expect(try String(contentsOfFile: outside + "/precious", encoding: .utf8) == "keep\n", "followed the symlink")
    }

    @Test func aDeepTreeATaskLeftInItsWritableRootfsIsRemoved() throws {
        let store = try TempDir.make(prefix: "dgrid-deep-layers").path
        defer { try? FileManager.default.removeItem(atPath: store) }
        try Shell.check(["cp", "-a", try Fixture.rootfs(), store + "/aaaa"])
        try FileManager.default.createDirectory(atPath: store + "/bbbb", withIntermediateDirectories: false)
        let state = try Self.scratch("dgrid-deep-state")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let runner = SandboxRunner(cgroups: nil, state: StateDirectory(path: state))

        let depth = Self.deeperThanTheFDLimit
        var spec = SandboxSpec(root: Fixture.layers([store + "/aaaa", store + "/bbbb"]), command: ["/probes/deeptree", "\(depth)"])
        spec.seccomp = try DefaultSeccomp.filter()
        spec.writableRootfs = true
        spec.user = UserID(uid: 0, gid: 0)  // the chain starts in /, which only root may write
        spec.timeoutSeconds = 120
        let o = try runner.run(spec)
        #expect(o.exitCode == 0, "\(o.stderr.text)")
        #expect(o.stdout.text == "made \(depth)\n")
        // The upper is in the sandbox's own tmpfs: nothing of it reached the
        // host; run/ holds only the shared anchor, empty.
        #expect(try OverlayRootfsTests.leftovers(state) == [], "the run outlived itself")
        #expect(Self.descriptors(into: state + "/run").isEmpty)
    }

    /// A crashed dgrid's run directories: the owner in the id (pid and start
    /// time) is gone. Swept when a runner starts, mounts detached first and
    /// symlinks never followed; a live owner's, and names dgrid never makes, stay.
    @Test(.enabled(if: geteuid() == 0, "needs root to leave a mount behind"))
    func crashedRunsAreSweptAndLiveOnesKept() throws {
        let home = try TempDir.make(prefix: "dgrid-sweep-state").path
        defer { try? FileManager.default.removeItem(atPath: home) }
        let outside = try TempDir.make(prefix: "dgrid-sweep-outside").path
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try "keep\n".write(toFile: outside + "/precious", atomically: false, encoding: .utf8)
        let state = StateDirectory(path: home)
        let run = try state.directory("run")

        let pidMax = Int((try String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8))
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 4_194_304
        let goneOwner = "\(pidMax + 1)-12345-0"          // no such process can exist
        let reusedPid = "\(getpid())-1-7"                 // this pid, but another start time
        let live = SandboxID.next()                       // this process
        let foreign = ["notes", "12-34"]                  // not sandbox ids: not ours to judge

        for name in [goneOwner, reusedPid, live] + foreign {
            try FileManager.default.createDirectory(atPath: run + "/" + name + "/upper", withIntermediateDirectories: true)
        }
        try Self.makeChain(in: run + "/" + goneOwner + "/upper", name: "deep", depth: 200, linkingTo: outside)
        #expect(symlink(outside, run + "/" + reusedPid + "/upper/escape") == 0)
        // A mount left behind: the sweep must detach it, not empty it through the tree.
        let mountPoint = run + "/" + goneOwner + "/rootfs"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        try #require("size=1m".withCString { mount("dgrid-test", mountPoint, "tmpfs", 0, $0) } == 0)
        try "in the mount\n".write(toFile: mountPoint + "/file", atomically: false, encoding: .utf8)
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }

        SandboxRunner(cgroups: nil, state: state).removeStaleGroups()

        let left = Set(try FileManager.default.contentsOfDirectory(atPath: run))
        #expect(left == Set([live] + foreign))
        #expect(!MountTable.mountPoints().contains { $0.hasPrefix(run + "/") }, "a mount below run/ stayed")
        #expect(try String(contentsOfFile: outside + "/precious", encoding: .utf8) == "keep\n", "followed a symlink")
    }

    @Test func aStateDirectoryWithoutRunsIsLeftAsItIs() throws {
        let home = try TempDir.make(prefix: "dgrid-sweep-empty").path
        defer { try? FileManager.default.removeItem(atPath: home) }
        SandboxRunner(cgroups: nil, state: StateDirectory(path: home)).removeStaleGroups()
        #expect(try FileManager.default.contentsOfDirectory(atPath: home).isEmpty)
    }

    @Test func mountTableEscapesAreUndone() {
        #expect(MountTable.unescape(ArraySlice(Array(#"/a\040b\011c\134d\012e"#.utf8))) == "/a b\tc\\d\ne")
        #expect(MountTable.unescape(ArraySlice(Array(#"/plain\04"#.utf8))) == #"/plain\04"#)
    }
}
