import Foundation
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// End to end: unpacked layers stacked by the kernel's overlayfs show what the
/// image spec says the merged filesystem holds. Needs root (mount, mknod,
/// trusted.* xattrs); the mount lives in a private mount namespace.
@Suite(.system) struct UnpackOverlayTests {
    @Test func whiteoutsOpaqueDirsAndReplacedDirsMergeAsTheSpecSays() throws {
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let lower = try LayerBuilder.build([
            .file("a", "deleted above"),
            .dir("d/"), .file("d/old", "hidden by the opaque dir"),
            .dir("l/"), .file("l/inner", "hidden by the symlink"),
            .file("keep", "kept"),
        ], in: scratch.blobs, name: "lower")
        let upper = try LayerBuilder.build([
            .file(".wh.a"),
            .file("d/.wh..wh..opq"), .dir("d/"), .file("d/new", "new"),
            .symlink("l", to: "keep"),
        ], in: scratch.blobs, name: "upper")
        for (layer, name) in [(lower, "lower"), (upper, "upper")] {
            _ = try LayerUnpacker.unpack(blobPath: layer.path, mediaType: layer.mediaType, expectedDiffID: layer.diffID,
                                         destination: scratch.base + "/" + name)
        }
        let merged = scratch.work + "/merged"
        try FileManager.default.createDirectory(atPath: merged, withIntermediateDirectories: false)

        let result = try Shell.run(["unshare", "-m", "--propagation", "private", "sh", "-c", """
            mount -t overlay overlay -o lowerdir=\(scratch.base)/upper:\(scratch.base)/lower \(merged) || exit 1
            cd \(merged) && find . -mindepth 1 -printf '%P %y\\n' | sort && readlink l && cat d/new
            """])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "d d\nd/new f\nkeep f\nl l\nkeep\nnew")
    }
}
