import Foundation
import Testing
import TestSupport

/// `dgrid sandbox run --image`: only allowlisted images run, from the shared
/// unpacked layers, with the image's config applied.
@Suite(.system, .serialized) struct ImageRunCLITests {
    private func allowedHome() throws -> ImageCLITests.Home {
        let home = try ImageCLITests.Home()
        _ = try home.importBusybox()
        let allow = try home.dgrid("image", "allow", "dgrid/busybox:latest", "--approved-by", "test")
        #expect(allow.status == 0, "\(allow.stderr)")
        return home
    }

    @Test func runsAnAllowlistedImageWithItsConfig() throws {
        let home = try allowedHome()
        let r = try home.dgrid("sandbox", "run", "--image", "dgrid/busybox:latest", "--env", "EXTRA=1", "--",
                               "sh", "-c", "id -u; pwd; echo $EXTRA; ls /bin/busybox")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "1000\n/\n1\n/bin/busybox\n")
        // Nothing of the run is left in the state directory: only the shared anchor, empty.
        let fm = FileManager.default
        #expect(((try? fm.contentsOfDirectory(atPath: home.path + "/run")) ?? []) == ["anchor"])
        #expect(((try? fm.contentsOfDirectory(atPath: home.path + "/run/anchor")) ?? ["?"]).isEmpty)

        let writable = try home.dgrid("sandbox", "run", "--image", "dgrid/busybox:latest", "--writable-rootfs",
                                      "--user", "0:0", "--", "sh", "-c", "echo x > /new && cat /new")
        #expect(writable.stdout == "x\n", "\(writable.stderr)")
        #expect(try fm.contentsOfDirectory(atPath: home.path + "/run") == ["anchor"])
        #expect(try fm.contentsOfDirectory(atPath: home.path + "/run/anchor").isEmpty)
    }

    @Test func runsByPinnedDigestToo() throws {
        let home = try allowedHome()
        let list = try home.dgrid("image", "list", "--json")
        let digest = try #require(list.stdout.range(of: #"sha256:[0-9a-f]{64}"#, options: .regularExpression).map { String(list.stdout[$0]) })
        let r = try home.dgrid("sandbox", "run", "--image", digest, "--", "true")
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func anImageNotOnTheAllowlistIsRefusedBeforeAnythingIsRead() throws {
        let home = try ImageCLITests.Home()
        _ = try home.importBusybox()  // imported, but nobody allowed it
        let r = try home.dgrid("sandbox", "run", "--image", "dgrid/busybox:latest", "--", "true")
        #expect(r.status == 125)
        #expect(r.stderr == "dgrid: image 'dgrid/busybox:latest' is not on the allowlist; an admin can add it with `dgrid image allow dgrid/busybox:latest`\n")
    }

    @Test func rootfsAndImageTogetherIsAUsageError() throws {
        let home = try allowedHome()
        let r = try home.dgrid("sandbox", "run", "--image", "dgrid/busybox:latest", "--rootfs", "/tmp", "--", "true")
        #expect(r.status == 125)
        #expect(r.stderr.contains("either --rootfs or --image"))
    }
}
