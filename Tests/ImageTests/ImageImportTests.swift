import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// Import (every blob verified, every layer unpacked at once, docs/ARCHITECTURE.md §5), the
/// allowlist gate in front of runs, and gc. Unpacking needs root (whiteouts,
/// ownership), as the kernel tests do.
@Suite(.system) struct ImageImportTests {
    private func importImages(_ path: String, name: String? = nil, into store: ImageStore) throws -> [ImportedImage] {
        try ImageImporter(store: store).importImages(from: path, name: name)
    }

    /// Asserts the image is indexed, its layers unpacked and readable.
    private func expectUsable(_ store: ImageStore, name: String, file: String = "bin/busybox") throws {
        let local = try #require(try store.index.image(named: name))
        let image = try store.loadImage(manifest: local.manifest.digest)
        for diffID in image.config.diffIDs {
            #expect(store.layers.isUnpacked(diffID))
        }
        let top = store.layers.path(for: try #require(image.config.diffIDs.last))
        #expect(FileManager.default.fileExists(atPath: "\(top)/\(file)"))
    }

    @Test func theBusyboxLayoutDirectoryImportsAsDgridBusybox() throws {
        let store = try ImageFixture.store()
        let imported = try importImages(try ImageFixture.busyboxLayout(), into: store)
        #expect(imported.count == 1)
        #expect(imported.first?.names == ["dgrid/busybox:latest"])
        #expect(imported.first?.layers.first?.report != nil)
        #expect(imported.first?.warnings == [])
        try expectUsable(store, name: "dgrid/busybox:latest")
        let layer = try #require(imported.first?.layers.first)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: store.layers.path(for: layer.diffID) + "/bin/sh") == "busybox")

        // Again: nothing to unpack, same digest.
        let again = try importImages(try ImageFixture.busyboxLayout(), into: store)
        #expect(again.first?.manifest.digest == imported.first?.manifest.digest)
        #expect(again.first?.layers.allSatisfy { $0.report == nil } == true)
    }

    @Test(arguments: [false, true])
    func theBusyboxLayoutTarImports(compressed: Bool) throws {
        let store = try ImageFixture.store()
        let imported = try importImages(try ImageFixture.tar(try ImageFixture.busyboxLayout(), compress: compressed),
                                        name: "tarred/busybox:1", into: store)
        #expect(imported.first?.names == ["tarred/busybox:1"])
        try expectUsable(store, name: "tarred/busybox:1")
    }

    @Test func aSkopeoOCIArchiveImports() throws {
        let store = try ImageFixture.store()
        let imported = try importImages(try ImageFixture.skopeoArchive(), into: store)
        #expect(imported.first?.names == ["dgrid/busybox:latest"])
        try expectUsable(store, name: "dgrid/busybox:latest")
    }

    @Test func anUmociImageImportsWithItsConfig() throws {
        let store = try ImageFixture.store()
        let layout = try ImageFixture.umociLayout()
        // umoci names images by tag only ("v1"): that is no name.
        #expect { try importImages(layout, into: store) } throws: { "\($0)".contains("--name") }
        #expect(try store.index.images().isEmpty)

        let imported = try importImages(layout, name: "umoci/busybox:v1", into: store)
        try expectUsable(store, name: "umoci/busybox:v1")
        let image = try store.loadImage(manifest: try #require(imported.first?.manifest.digest))
        let config = try ImageRunConfig(validating: image.config, image: image.manifestDigest)
        #expect(config.workingDirectory == "/work")
        #expect(config.user == UserID(uid: 1000, gid: 1000))
        #expect(config.command == ["sh"])
        #expect(config.environment.contains("GREETING=hello"))
    }

    /// A multi-platform index: only the host's manifest is fetched (the arm64
    /// one is not even in the layout).
    @Test func thePlatformsManifestIsSelectedFromAnIndex() throws {
        let layout = try ImageFixture.busyboxCopy()
        let editor = LayoutEditor(layout: layout)
        let amd64 = try editor.manifestDigest()
        let size = try FileManager.default.attributesOfItem(atPath: layout + "/blobs/sha256/" + amd64.dropFirst(7))[.size] as? Int ?? 0
        let host = Platform.host
        let index: [String: Any] = [
            "schemaVersion": 2, "mediaType": OCIMediaType.dockerManifestList,
            "manifests": [
                ["mediaType": OCIMediaType.ociManifest, "digest": "sha256:" + String(repeating: "a", count: 64), "size": 500,
                 "platform": ["os": "linux", "architecture": host.architecture == "arm64" ? "amd64" : "arm64"]],
                ["mediaType": OCIMediaType.ociManifest, "digest": amd64, "size": size,
                 "platform": ["os": "linux", "architecture": host.architecture]],
            ],
        ]
        try editor.setManifest(try JSONSerialization.data(withJSONObject: index), mediaType: OCIMediaType.dockerManifestList)
        let store = try ImageFixture.store()
        let imported = try importImages(layout, into: store)
        #expect(imported.first?.manifest.digest.description == amd64)
        #expect(imported.first?.manifest.platform?.architecture == host.architecture)
        try expectUsable(store, name: "dgrid/busybox:latest")
    }

    @Test func dockerSchema2MediaTypesImport() throws {
        let layout = try ImageFixture.busyboxCopy()
        try LayoutEditor(layout: layout).edit(manifest: { manifest in
            manifest["mediaType"] = OCIMediaType.dockerManifest
            var config = manifest["config"] as? [String: Any] ?? [:]
            config["mediaType"] = OCIMediaType.dockerConfig
            manifest["config"] = config
            var layers = manifest["layers"] as? [[String: Any]] ?? []
            layers[0]["mediaType"] = OCIMediaType.dockerLayerGzip
            manifest["layers"] = layers
        })
        // edit() wrote an OCI media type into index.json; say Docker there too.
        let editor = LayoutEditor(layout: layout)
        let manifestPath = layout + "/blobs/sha256/" + (try editor.manifestDigest()).dropFirst(7)
        try editor.setManifest(try Data(contentsOf: URL(fileURLWithPath: manifestPath)), mediaType: OCIMediaType.dockerManifest)
        let store = try ImageFixture.store()
        let imported = try importImages(layout, into: store)
        #expect(imported.first?.manifest.mediaType == OCIMediaType.dockerManifest)
        #expect(imported.first?.layers.first?.blob.mediaType == OCIMediaType.dockerLayerGzip)
        try expectUsable(store, name: "dgrid/busybox:latest")
    }

    @Test(arguments: [ImageFixture.DockerSaveStyle.legacy, .symlinks])
    func aDockerSaveTarImports(style: ImageFixture.DockerSaveStyle) throws {
        let store = try ImageFixture.store()
        let imported = try importImages(try ImageFixture.dockerSaveTar(style), into: store)
        let image = try #require(imported.first)
        #expect(image.names == ["docker/busybox:saved"])
        // The layer is the uncompressed layer.tar: its digest is its diff_id.
        let layer = try #require(image.layers.first)
        #expect(layer.blob.digest == layer.diffID)
        #expect(layer.blob.mediaType == OCIMediaType.ociLayerTar)
        try expectUsable(store, name: "docker/busybox:saved", file: "etc/hello")
        let stored = try store.loadImage(manifest: image.manifest.digest)
        #expect(stored.config.env == ["PATH=/bin", "SAVED=1"])
    }

    @Test func aDockerSaveWhoseLayersAndDiffIDsDisagreeIsRefused() throws {
        let store = try ImageFixture.store()
        #expect {
            try importImages(try ImageFixture.dockerSaveTar(.legacy, extraLayerDiffID: true), into: store)
        } throws: { "\($0)".contains("1 layers but the config has 2 diff_ids") }
        #expect(try store.index.images().isEmpty)
    }

    // MARK: refused imports leave nothing referenced

    private func expectNothingReferenced(_ store: ImageStore) throws {
        #expect(try store.index.images().isEmpty)
        let layers = try FileManager.default.contentsOfDirectory(atPath: store.layers.directory)
        #expect(layers.filter { !$0.hasSuffix(".inuse") }.isEmpty, "layer directories left: \(layers)")
    }

    @Test(arguments: [false, true])
    func aTamperedLayerBlobIsRefused(asTar: Bool) throws {
        let layout = try ImageFixture.busyboxCopy()
        let blob = try LayoutEditor(layout: layout).layerPath()
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: blob))
        try handle.seek(toOffset: 5000)
        try handle.write(contentsOf: Data([0x42, 0x42]))
        try handle.close()
        let store = try ImageFixture.store()
        let digest = try Digest(parsing: "sha256:" + URL(fileURLWithPath: blob).lastPathComponent)
        #expect {
            try importImages(asTar ? try ImageFixture.tar(layout) : layout, into: store)
        } throws: { error in
            guard let error = error as? ImageError, case .digestMismatch(let expected, _) = error else { return false }
            return expected == digest
        }
        try expectNothingReferenced(store)
        #expect(!store.content.has(digest))
    }

    @Test func aLayerThatDoesNotMatchItsDiffIDIsRefusedByTheUnpacker() throws {
        let layout = try ImageFixture.busyboxCopy()
        try LayoutEditor(layout: layout).edit(config: { config in
            config["rootfs"] = ["type": "layers", "diff_ids": ["sha256:" + String(repeating: "e", count: 64)]]
        })
        let store = try ImageFixture.store()
        #expect {
            try importImages(layout, into: store)
        } throws: { error in
            guard let error = error as? ImageError, case .unpack(.diffIDMismatch) = error else { return false }
            return true
        }
        try expectNothingReferenced(store)
    }

    @Test func aDescriptorWithTheWrongSizeIsRefused() throws {
        let layout = try ImageFixture.busyboxCopy()
        try LayoutEditor(layout: layout).edit(manifest: { manifest in
            var layers = manifest["layers"] as? [[String: Any]] ?? []
            layers[0]["size"] = (layers[0]["size"] as? Int ?? 0) - 1
            manifest["layers"] = layers
        })
        let store = try ImageFixture.store()
        #expect { try importImages(layout, into: store) } throws: { ($0 as? ImageError)?.caseName == "tooLong" }
        try expectNothingReferenced(store)
    }

    @Test func layersAndDiffIDsMustPairUp() throws {
        let layout = try ImageFixture.busyboxCopy()
        try LayoutEditor(layout: layout).edit(config: { config in
            var rootfs = config["rootfs"] as? [String: Any] ?? [:]
            let ids = rootfs["diff_ids"] as? [String] ?? []
            rootfs["diff_ids"] = ids + ids
            config["rootfs"] = rootfs
        })
        let store = try ImageFixture.store()
        #expect { try importImages(layout, into: store) } throws: { "\($0)".contains("1 layers but the config lists 2 diff_ids") }
        try expectNothingReferenced(store)
    }

    @Test func aManifestWithBothManifestsAndLayersIsRefused() throws {
        let layout = try ImageFixture.busyboxCopy()
        try LayoutEditor(layout: layout).edit(manifest: { $0["manifests"] = [] })
        let store = try ImageFixture.store()
        #expect { try importImages(layout, into: store) } throws: { "\($0)".contains("both 'manifests'") }
        try expectNothingReferenced(store)
    }

    @Test func aFIFOInPlaceOfABlobCannotHangAnImport() throws {
        let layout = try ImageFixture.busyboxCopy()
        let blob = try LayoutEditor(layout: layout).layerPath()
        try FileManager.default.removeItem(atPath: blob)
        #expect(mkfifo(blob, 0o600) == 0)
        let store = try ImageFixture.store()
        #expect { try importImages(layout, into: store) } throws: { "\($0)".contains("not a regular file") }
        try expectNothingReferenced(store)
    }

    @Test func argvFollowsDockerEntrypointAndCmdRules() throws {
        let json = #"{"config":{"Entrypoint":["/bin/tini","--"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#
        let config = try ImageRunConfig(validating: try ImageConfig.parse(Array(json.utf8), what: "c", platform: nil),
                                        image: Digest(of: []))
        #expect(config.argv(taskArguments: []) == ["/bin/tini", "--", "sh"])
        #expect(config.argv(taskArguments: ["echo", "hi"]) == ["/bin/tini", "--", "echo", "hi"])
    }

    @Test func notAnImageIsRefusedClearly() throws {
        let store = try ImageFixture.store()
        let empty = try TempDir.make(prefix: "dgrid-test-empty").path
        #expect { try importImages(empty, into: store) } throws: { "\($0)".contains("no oci-layout file") }
        let junk = empty + "/junk.tar"
        try Data("not a tar at all".utf8).write(to: URL(fileURLWithPath: junk))
        #expect(throws: ImageError.self) { try importImages(junk, into: store) }
        #expect { try importImages(empty + "/missing", into: store) } throws: { "\($0)".contains("No such file") }
    }

    // MARK: resolve

    private func importedAndAllowed() throws -> (ImageStore, Digest) {
        let store = try ImageFixture.store()
        let imported = try importImages(try ImageFixture.busyboxLayout(), into: store)
        let digest = try #require(imported.first?.manifest.digest)
        _ = try ImageAdmin(store: store).allow("dgrid/busybox:latest", approvedBy: "test", note: nil, scanCommand: nil)
        return (store, digest)
    }

    @Test func resolveGivesLayersAndTheValidatedConfig() throws {
        let (store, digest) = try importedAndAllowed()
        let resolver = ImageResolver(store: store)
        for reference in ["dgrid/busybox:latest", "dgrid/busybox", "dgrid/busybox@\(digest)", digest.description] {
            let resolved = try resolver.resolve(reference: reference)
            #expect(resolved.manifestDigest == digest)
            #expect(resolved.allowlistedName == "dgrid/busybox:latest")
            #expect(resolved.layers.map(\.directory).count == 1)
            #expect(resolved.layers.map(\.directory).allSatisfy { $0.hasPrefix(store.layers.directory + "/") })
            #expect(FileManager.default.fileExists(atPath: resolved.layers.map(\.directory)[0] + "/bin/busybox"))
            #expect(resolved.config.command == ["sh"])
            #expect(resolved.config.workingDirectory == "/")
            #expect(resolved.config.user == nil)
            resolved.lease.release()
        }
    }

    @Test func resolveRefusesWhatIsNotAllowlistedBeforeReadingTheStore() throws {
        let store = try ImageFixture.store()
        _ = try importImages(try ImageFixture.busyboxLayout(), into: store)
        let resolver = ImageResolver(store: store)
        #expect(throws: ImageError.notAllowlisted("dgrid/busybox:latest")) { try resolver.resolve(reference: "dgrid/busybox:latest") }
        #expect { try resolver.resolve(reference: "evil/image") } throws: { error in
            "\(error)" == "image 'evil/image' is not on the allowlist; an admin can add it with `dgrid image allow evil/image`"
        }
        let digest = try #require(try store.index.images().first?.manifest.digest)
        #expect(throws: ImageError.notAllowlisted(digest.description)) { try resolver.resolve(reference: digest.description) }
        #expect(throws: ImageError.self) { try resolver.resolve(reference: "sha256:ABC") }
    }

    @Test func resolveRefusesAnUnpinnedEntryAndAnotherDigest() throws {
        let (store, digest) = try importedAndAllowed()
        try store.allowlist.put(AllowlistEntry(name: "later/image:1", digest: nil, addedAt: nil, approvedBy: nil, note: nil))
        let resolver = ImageResolver(store: store)
        #expect(throws: ImageError.notPinned("later/image:1")) { try resolver.resolve(reference: "later/image:1") }
        let other = Digest(of: Array("other".utf8))
        #expect(throws: ImageError.pinnedToOtherDigest(name: "dgrid/busybox:latest", pinned: digest, requested: other)) {
            try resolver.resolve(reference: "dgrid/busybox@\(other)")
        }
    }

    @Test func allowRefusesAConfigARunWouldRefuse() throws {
        let layout = try ImageFixture.busyboxCopy()
        try LayoutEditor(layout: layout).edit(config: { config in
            var inner = config["config"] as? [String: Any] ?? [:]
            inner["User"] = "nobody"
            config["config"] = inner
        })
        let store = try ImageFixture.store()
        let imported = try importImages(layout, name: "named/user", into: store)
        #expect(imported.first?.warnings.first?.contains("config User 'nobody'") == true)
        #expect { try ImageAdmin(store: store).allow("named/user", approvedBy: nil, note: nil, scanCommand: nil) }
            throws: { "\($0)".contains("config User 'nobody'") }
        #expect(try store.allowlist.entries().isEmpty)
    }

    /// Read-modify-write under an flock: concurrent writers lose no update
    /// (flock excludes open file descriptions, so threads count as well as processes).
    @Test func concurrentIndexAndAllowlistUpdatesLoseNothing() async throws {
        let store = try ImageFixture.store()
        let manifest = Descriptor(mediaType: OCIMediaType.ociManifest, digest: Digest(of: Array("m".utf8)), size: 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<24 {
                group.addTask {
                    try store.index.set([LocalImage(name: "app/n\(n):latest", manifest: manifest)])
                    try store.allowlist.put(AllowlistEntry(name: "app/n\(n):latest", digest: manifest.digest,
                                                           addedAt: Timestamp.now(), approvedBy: "t", note: nil))
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.index.images().count == 24)
        #expect(try store.allowlist.entries().count == 24)
    }

    // MARK: gc

    @Test func gcRemovesUnreferencedBlobsAndLayersAndKeepsReferencedOnes() throws {
        let store = try ImageFixture.store()
        let busybox = try #require(try importImages(try ImageFixture.busyboxLayout(), into: store).first)
        let docker = try #require(try importImages(try ImageFixture.dockerSaveTar(.legacy), into: store).first)
        let stray = try store.content.ingest(bytes: Array("stray".utf8))
        // Drop the docker image's name: its blobs and layer become unreferenced.
        try store.index.remove(name: "docker/busybox:saved")

        let report = try ImageGarbageCollector(store: store).collect()
        let dockerLayer = try #require(docker.layers.first?.diffID)
        #expect(report.removedLayers == [dockerLayer.hex])
        #expect(Set(report.removedBlobs).isSuperset(of: [stray, docker.manifest.digest, docker.configDigest]))
        #expect(!store.layers.isUnpacked(dockerLayer))
        #expect(!store.content.has(docker.manifest.digest))
        try expectUsable(store, name: "dgrid/busybox:latest")
        #expect(store.content.has(busybox.manifest.digest))
        #expect(store.content.has(busybox.configDigest))

        let second = try ImageGarbageCollector(store: store).collect()
        #expect(second.removedBlobs.isEmpty && second.removedLayers.isEmpty)
    }

    @Test func gcKeepsAllowlistedDigestsEvenWithoutAName() throws {
        let (store, digest) = try importedAndAllowed()
        try store.index.remove(name: "dgrid/busybox:latest")
        let report = try ImageGarbageCollector(store: store).collect()
        #expect(report.removedLayers.isEmpty)
        #expect(store.content.has(digest))
        let resolved = try ImageResolver(store: store).resolve(reference: "dgrid/busybox:latest")
        resolved.lease.release()
    }

    @Test func gcNeverRemovesALayerARunHolds() throws {
        let (store, _) = try importedAndAllowed()
        let resolved = try ImageResolver(store: store).resolve(reference: "dgrid/busybox:latest")
        _ = try store.allowlist.remove(name: "dgrid/busybox:latest", digest: nil)
        try store.index.remove(name: "dgrid/busybox:latest")

        let held = try ImageGarbageCollector(store: store).collect()
        let layer = URL(fileURLWithPath: resolved.layers.map(\.directory)[0]).lastPathComponent
        #expect(held.layersInUse == [layer])
        #expect(FileManager.default.fileExists(atPath: resolved.layers.map(\.directory)[0] + "/bin/busybox"))

        resolved.lease.release()
        let released = try ImageGarbageCollector(store: store).collect()
        #expect(released.removedLayers == [layer])
        #expect(!FileManager.default.fileExists(atPath: resolved.layers.map(\.directory)[0]))
    }

    /// A corrupt root would make everything look unreferenced: gc stops instead.
    @Test func gcRemovesNothingWhenAReferencedManifestIsCorrupt() throws {
        let store = try ImageFixture.store()
        let image = try #require(try importImages(try ImageFixture.busyboxLayout(), into: store).first)
        let stray = try store.content.ingest(bytes: Array("stray".utf8))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: store.content.path(for: image.manifest.digest)))
        #expect { try ImageGarbageCollector(store: store).collect() } throws: { error in
            guard let error = error as? ImageError, case .gcAborted = error else { return false }
            return error.description.contains(image.manifest.digest.description)
        }
        #expect(store.content.has(stray))
        #expect(store.layers.isUnpacked(try #require(image.layers.first?.diffID)))
    }

    @Test func gcWaitsForNoImportToBeRunning() throws {
        let store = try ImageFixture.store()
        let importing = try FileLock(path: store.gcLockPath, mode: .shared)
        #expect { try ImageGarbageCollector(store: store).collect() } throws: { "\($0)".contains("an import is running") }
        _ = consume importing
        _ = try ImageGarbageCollector(store: store).collect()
    }

    @Test func scanCommandsRunWithoutAShellOnAnExportedLayout() throws {
        let (store, digest) = try importedAndAllowed()
        let image = try store.loadImage(manifest: digest)
        let summary = try ImageScanner(store: store).scan(
            image: image, name: "dgrid/busybox:latest",
            command: #"/bin/sh -c 'test -f "$0/oci-layout" && ls "$0/blobs/sha256" | wc -l; exit 4' {layout}"#)
        #expect(summary.exitStatus == 4)
        #expect(summary.summary == "3")
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.state.path + "/images/tmp").isEmpty)
        #expect(throws: ImageError.self) {
            try ImageScanner(store: store).scan(image: image, name: "x", command: "/nonexistent/scanner {layout}")
        }
    }
}
