import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// Image runs: the root is an overlay of shared, read-only layers, mounted in
/// the sandbox's own mount namespace; nothing is copied per run and nothing of
/// the run survives it.
@Suite(.system, .serialized) struct OverlayRootfsTests {
    /// Two layers in one store: the busybox rootfs, and one adding /hello and hiding nothing.
    private func makeLayers() throws -> (store: String, layers: [String], runner: SandboxRunner, state: String) {
        let store = try TempDir.make(prefix: "dgrid-layers").path
        try Shell.check(["cp", "-a", try Fixture.rootfs(), store + "/aaaa"])
        try FileManager.default.createDirectory(atPath: store + "/bbbb/etc", withIntermediateDirectories: true)
        try "from layer two\n".write(toFile: store + "/bbbb/hello", atomically: false, encoding: .utf8)
        let state = try TempDir.make(prefix: "dgrid-state").path
        let runner = SandboxRunner(cgroups: try? Cgroups.detectDriver(), state: StateDirectory(path: state))
        return (store, [store + "/aaaa", store + "/bbbb"], runner, state)
    }

    /// What a run left in the state's run/: nothing but the shared, empty anchor.
    static func leftovers(_ state: String) throws -> [String] {
        let anchor = try FileManager.default.contentsOfDirectory(atPath: state + "/run/anchor").map { "anchor/" + $0 }
        return try FileManager.default.contentsOfDirectory(atPath: state + "/run").filter { $0 != "anchor" } + anchor
    }

    private func spec(_ layers: [String], _ script: String) throws -> SandboxSpec {
        var spec = SandboxSpec(root: Fixture.layers(layers), command: ["/bin/sh", "-c", script])
        spec.seccomp = try DefaultSeccomp.filter()
        spec.timeoutSeconds = 30
        return spec
    }

    @Test func readOnlyImageSeesEveryLayerAndCannotWrite() throws {
        let (_, layers, runner, state) = try makeLayers()
        let mounts = try HostMounts.snapshot()
        let o = try runner.run(try spec(layers, "cat /hello; ls /bin/busybox; touch /x 2>&1 | grep -c 'Read-only'"))
        #expect(o.stdout.text == "from layer two\n/bin/busybox\n1\n", "\(o.stderr.text)")
        #expect(try HostMounts.snapshot() == mounts)
        #expect(try Self.leftovers(state) == [])
    }

    @Test func writableImageWritesToAPerRunUpperOnly() throws {
        let (store, layers, runner, state) = try makeLayers()
        var s = try spec(layers, "echo new > /newfile && rm /hello && ln -s /etc /escape && cat /newfile; ls /hello 2>&1 | grep -c 'No such'")
        s.writableRootfs = true
        s.user = UserID(uid: 0, gid: 0)
        let o = try runner.run(s)
        #expect(o.stdout.text == "new\n1\n", "\(o.stderr.text)")
        // The shared layers are untouched, and the per-run directory is gone.
        #expect(!FileManager.default.fileExists(atPath: store + "/aaaa/newfile"))
        #expect(try String(contentsOfFile: store + "/bbbb/hello", encoding: .utf8) == "from layer two\n")
        #expect(try Self.leftovers(state) == [])
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"), "cleanup followed the task's symlink")
    }

    /// A writable root's upper is bounded (docs/THREATS.md, T7): past the
    /// limit the task gets ENOSPC, and nothing of it reaches the host disk.
    @Test func aWritableRootIsBounded() throws {
        let (_, layers, runner, state) = try makeLayers()
        var s = try spec(layers, "dd if=/dev/zero of=/big bs=1M count=16 2>&1 | grep -c 'No space left'; ls -l /big | awk '{print ($5 <= 8388608)}'")
        s.writableRootfs = true
        s.writableRootfsSize = ByteCount(bytes: 8 << 20)
        s.user = UserID(uid: 0, gid: 0)
        let o = try runner.run(s)
        #expect(o.stdout.text == "1\n1\n", "\(o.stderr.text)")
        #expect(try Self.leftovers(state) == [])
    }

    /// A lone layer is mounted like any image (over dgrid's own mount-point
    /// layer): the sandbox's /proc, /dev, /tmp and /sys are never created
    /// inside the shared, content-addressed layer (docs/THREATS.md, T9).
    @Test func aLayerIsNeverWrittenEvenWithoutMountPoints() throws {
        let (store, layers, runner, _) = try makeLayers()
        let bare = store + "/cccc"
        try Shell.check(["cp", "-a", layers[0], bare])
        for dir in ["proc", "dev", "tmp", "sys"] { try? FileManager.default.removeItem(atPath: bare + "/" + dir) }
        let before = try Shell.run(["find", bare, "-printf", "%p %m %s %T@\\n"]).stdout
        let o = try runner.run(try spec([bare], "ls /hello 2>&1 | grep -c 'No such'; id -u; ls -d /proc/1 /dev/null /tmp"))
        #expect(o.stdout.text == "1\n1000\n/dev/null\n/proc/1\n/tmp\n", "\(o.stderr.text)")
        #expect(try Shell.run(["find", bare, "-printf", "%p %m %s %T@\\n"]).stdout == before, "the layer was written")
    }

    @Test func layersFromDifferentStoresMakeOneRoot() throws {
        let (_, layers, runner, _) = try makeLayers()
        let other = try TempDir.make(prefix: "dgrid-other-store").path
        try "from another store\n".write(toFile: other + "/hello", atomically: false, encoding: .utf8)
        let o = try runner.run(try spec([layers[0], other], "cat /hello"))
        #expect(o.stdout.text == "from another store\n", "\(o.stderr.text)")
    }

    @Test func aMissingLayerIsReported() throws {
        let (store, layers, runner, _) = try makeLayers()
        #expect {
            try runner.run(try spec(layers + [store + "/cccc"], "true"))
        } throws: { error in
            "\(error)".contains("cccc") && "\(error)".contains("re-import")
        }
    }
}
