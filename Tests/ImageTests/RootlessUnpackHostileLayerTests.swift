import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// UnpackHostileLayerTests' table once more, as a real unprivileged user with
/// subordinate ids (docs/THREATS.md "Unpacking" and T8): each layer wrapped in
/// an OCI layout and given to `dgrid image import` run as that user, with its
/// DGRID_HOME where the root table unpacks. Every refusal must carry the same
/// entry and reason, leave no layer, and change nothing outside the store; the
/// decoy belongs to the user, so an escape would succeed if the unpacker let it.
///
/// Rows with limits of their own (bombs, a million entries, long names) are
/// left to the root table: the CLI imports with the default limits, and the
/// streaming counters those rows prove do not depend on who runs them.
@Suite(.system, .serialized, .enabled(if: getuid() == 0, "needs root to create the unprivileged user"))
struct RootlessUnpackHostileLayerTests {
    static let dgrid = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/dgrid").path

    static var binary: String { ProcessInfo.processInfo.environment["DGRID_BIN"] ?? dgrid }

    static let attacks = UnpackHostileLayerTests.attacks.filter { hasDefaultLimits($0.limits) }

    static func hasDefaultLimits(_ limits: UnpackLimits) -> Bool {
        let d = UnpackLimits()
        return limits.maxLayerBytes == d.maxLayerBytes && limits.maxEntries == d.maxEntries
            && limits.maxPathBytes == d.maxPathBytes && limits.maxPathDepth == d.maxPathDepth
            && limits.maxSymlinkTargetBytes == d.maxSymlinkTargetBytes
    }

    /// What a layer that unpacks must look like when a user unpacked it: owners
    /// are the image's as the user's subordinate ids (the layer helper unpacks
    /// in that mapping), the rest as for root.
    static let unpackedChecks: [String: @Sendable (_ root: String, _ user: RootlessUser) throws -> Void] = [
        "chmod through a symlink": { (root: String, user: RootlessUser) throws in
            var info = stat()
            #expect(lstat(root + "/f", &info) == 0 && info.st_mode & S_IFMT == S_IFREG)
            #expect(info.st_mode & 0o7777 == 0o777 && info.st_uid == user.subordinateStart + 4242, "image owner 4242 as a subordinate id")
            #expect(try String(contentsOfFile: root + "/f", encoding: .utf8) == "mine")
        },
        "hardlink to a symlink links the symlink": { (root: String, _: RootlessUser) throws in
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/s") == "../decoy/canary")
            #expect(try String(contentsOfFile: root + "/h", encoding: .utf8) == "replaced")
        },
        "device nodes": { (root: String, _: RootlessUser) throws in
            #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/dev") == [])
        },
        "setuid root file": { (root: String, _: RootlessUser) throws in
            var info = stat()
            #expect(lstat(root + "/su", &info) == 0 && info.st_mode & 0o7777 == 0o755)
            #expect(lstat(root + "/sg", &info) == 0 && info.st_mode & 0o7777 == 0o711)
        },
        "security.capability and trusted xattrs": { (root: String, _: RootlessUser) throws in
            #expect(try xattrs(of: root + "/ping") == ["user.note": "kept"])
        },
        "forged user.overlay xattrs": { (root: String, _: RootlessUser) throws in
            #expect(try xattrs(of: root + "/ping") == ["user.note": "kept"])
        },
        "opaque marker, then its directory replaced by a symlink": { (root: String, _: RootlessUser) throws in
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/d") == "../decoy")
            #expect(try xattrs(of: root) == [:])
        },
    ]

    @Test(arguments: attacks)
    func hostileLayerImportedByAUser(_ attack: LayerAttack) throws {
        let user = try RootlessUser()
        defer { user.remove() }
        let scratch = try UnpackScratch()
        defer { scratch.remove() }
        let layer = try attack.blob?(scratch.blobs)
            ?? LayerBuilder.build(attack.entries(scratch.work), in: scratch.blobs, format: attack.format)
        let layout = try Self.layout(for: layer, in: scratch.blobs)
        // The user may reach the layout and owns the decoy; the path to its
        // state directory is root's and closed to others, as StateDirectory wants.
        try Shell.check(["chmod", "-R", "a+rX", scratch.blobs])
        try Shell.check(["chmod", "0755", scratch.work, scratch.base])
        try Shell.check(["chown", "-R", "\(user.uid):\(user.gid)", scratch.base + "/decoy", scratch.base + "/rootfs-evil"])
        // The store is the user's own 0700 directory, where the root table unpacks.
        try FileManager.default.createDirectory(atPath: scratch.destination, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        try Shell.check(["chown", "\(user.uid):\(user.gid)", scratch.destination])
        let before = try scratch.snapshot()

        let home = scratch.destination
        let r = try user.run(Self.binary, ["image", "import", layout], environment: ["DGRID_HOME": home])
        let layerDirectory = home + "/layers/" + layer.diffID.hex
        switch attack.outcome {
        case .refused(let entry, let reason):
            #expect(r.status == 1, "exit \(r.status): \(r.stderr)")
            if let entry {
                #expect(r.stderr.contains("entry '\(entry.replacingOccurrences(of: "$WORK", with: scratch.work))"), "\(r.stderr)")
            }
            #expect(r.stderr.contains(reason), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: layerDirectory))
        case .unpacks:
            #expect(r.status == 0, "\(attack.name) should unpack: \(r.stderr)")
            if let check = Self.unpackedChecks[attack.name] {
                try check(layerDirectory, user)
            } else {
                Issue.record("no rootless expectation for \(attack.name)")
            }
        }
        #expect(try scratch.snapshot() == before, "something outside the store changed")
        let stray = (try? FileManager.default.contentsOfDirectory(atPath: home + "/layers")) ?? []
        #expect(stray.filter { $0.contains(".unpack-") } == [])
        #expect(!FileManager.default.fileExists(atPath: "/etc/dgrid-unpack-escape"))
        #expect(try user.filesOwned(below: ["/tmp", "/var/tmp", "/dev/shm"]).filter { !$0.hasPrefix(scratch.work) } == [])
    }

    /// An OCI layout of one image, `test/hostile:1`, whose one layer is `layer`.
    static func layout(for layer: LayerBuilder.Layer, in dir: String) throws -> String {
        let out = dir + "/layout"
        let blobs = out + "/blobs/sha256"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        func put(_ data: Data) throws -> (String, Int) {
            let path = dir + "/put"
            try data.write(to: URL(fileURLWithPath: path))
            let hex = try LayerBuilder.sha256(of: path)
            try FileManager.default.moveItem(atPath: path, toPath: blobs + "/" + hex)
            return ("sha256:" + hex, data.count)
        }
        let layerBytes = try Data(contentsOf: URL(fileURLWithPath: layer.path))
        let (layerDigest, layerSize) = try put(layerBytes)
        let config: [String: Any] = ["architecture": "amd64", "os": "linux", "config": ["Env": ["PATH=/bin"]],
                                     "rootfs": ["type": "layers", "diff_ids": [layer.diffID.description]]]
        let (configDigest, configSize) = try put(try JSONSerialization.data(withJSONObject: config))
        let manifest: [String: Any] = [
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize],
            "layers": [["mediaType": layer.mediaType, "digest": layerDigest, "size": layerSize]],
        ]
        let (manifestDigest, manifestSize) = try put(try JSONSerialization.data(withJSONObject: manifest))
        let index: [String: Any] = ["schemaVersion": 2, "manifests": [[
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": manifestSize,
            "annotations": ["org.opencontainers.image.ref.name": "test/hostile:1"]]]]
        try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: out + "/index.json"))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: out + "/oci-layout"))
        return out
    }
}
