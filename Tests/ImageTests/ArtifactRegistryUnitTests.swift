import Foundation
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport
@testable import Registry

/// The registry store's values at the edge (docs/ARCHITECTURE.md §10,
/// docs/THREATS.md T19): repositories and artifact locations as a record or a
/// setting gives them (anyone can push a record), the tag made from a task id,
/// and the OCI artifact manifest the helper builds and reads back.
@Suite(.unit) struct ArtifactRegistryUnitTests {
    static let digest = Digest(of: Array("x".utf8))

    @Test func repositoriesNeedANamedRegistryAndAStrictPath() throws {
        let repository = try ArtifactRepository(parsing: "127.0.0.1:5000/grid/artifacts")
        #expect(repository.registry == "127.0.0.1:5000" && repository.path == "grid/artifacts")
        #expect(repository.location(insecure: true).base == "http://127.0.0.1:5000")
        #expect(repository.location(insecure: false).repository == "grid/artifacts")
        // One spelling per repository: the host is compared lowercased.
        #expect(try ArtifactRepository(parsing: "Registry.Example:443/a/b") == ArtifactRepository(parsing: "registry.example:443/a/b"))
        #expect(try ArtifactRepository(parsing: "localhost/x").registry == "localhost")
        for bad in ["", "grid/artifacts", "artifacts", "127.0.0.1:5000", "127.0.0.1:5000/", "127.0.0.1:5000/Grid", "127.0.0.1:99999/a",
                    "127.0.0.1:0/a", "http://127.0.0.1:5000/a", "user:pw@127.0.0.1:5000/a", "127.0.0.1:5000/a/../b", "127.0.0.1:5000/a//b",
                    "127.0.0.1:5000/a b", "127.0.0.1:5000/a\u{0}b", "-bad.example/a", "[::1]:5000/a", "127.0.0.1:5000/other.example:1/a",
                    "127.0.0.1:5000/" + String(repeating: "a", count: 300)] {
            #expect(throws: ArtifactLocationError.self, "\(bad.debugDescription)") { try ArtifactRepository(parsing: bad) }
        }
    }

    @Test func locationsAreARepositoryAndAManifestDigest() throws {
        let location = try ArtifactManifestLocation(parsing: "127.0.0.1:5000/grid/artifacts@\(Self.digest)")
        #expect(location.repository.description == "127.0.0.1:5000/grid/artifacts" && location.manifest == Self.digest)
        #expect(location.description == "127.0.0.1:5000/grid/artifacts@\(Self.digest)")
        for bad in ["127.0.0.1:5000/grid/artifacts", "127.0.0.1:5000/grid/artifacts@sha256:abc", "127.0.0.1:5000/grid/artifacts@md5:\(Self.digest.hex)",
                    "127.0.0.1:5000/grid/artifacts:tag", "/var/lib/dgrid/artifacts/sha256/\(Self.digest.hex)", "artifacts/sha256/\(Self.digest.hex)",
                    "127.0.0.1:5000/grid/artifacts@\(Self.digest)@\(Self.digest)", "\u{1b}[31m.example/a@\(Self.digest)"] {
            #expect(throws: ArtifactLocationError.self, "\(bad.debugDescription)") { try ArtifactManifestLocation(parsing: bad) }
        }
        // The error quotes what it was given, made harmless.
        do {
            _ = try ArtifactManifestLocation(parsing: "\u{1b}[2J.example/a@\(Self.digest)")
        } catch {
            #expect(!error.description.contains("\u{1b}") && error.description.contains("is not a registry artifact location"), "\(error)")
        }
    }

    @Test func tagsAreTheTaskIDAndTheManifestsDigest() {
        #expect(ArtifactTag.make(stem: "build-7", manifest: Self.digest) == "build-7_\(Self.digest.hex.prefix(12))")
        // A 128-byte task id: cut so the tag stays 128, the digest part whole.
        let long = String(repeating: "a", count: 128)
        let tag = ArtifactTag.make(stem: long, manifest: Self.digest)
        #expect(tag.count == 128 && tag.hasSuffix("_" + Self.digest.hex.prefix(12)))
        // Anything a tag may not hold is replaced; a tag never starts with '.' or '-'.
        #expect(ArtifactTag.make(stem: "a/b c", manifest: Self.digest).hasPrefix("a_b_c_"))
        #expect(ArtifactTag.make(stem: "-x", manifest: Self.digest).hasPrefix("task-x_"))
        #expect(ArtifactTag.make(stem: "", manifest: Self.digest) == "task_\(Self.digest.hex.prefix(12))")
        for stem in ["build-7", long, "a/b c", "-x", ".y", "", "ü"] {
            let made = ArtifactTag.make(stem: stem, manifest: Self.digest)
            #expect(ImageReference.isValidTag(made), "\(made)")
        }
    }

    @Test func theManifestIsAnOCIArtifactWithTitledLayers() throws {
        let layers = [ArtifactManifest.Layer(title: "out/big.bin", digest: Self.digest, size: 3 << 20, mediaType: "application/octet-stream"),
                      ArtifactManifest.Layer(title: "dgrid-stdout", digest: Digest(of: Array("y".utf8)), size: 1, mediaType: "text/plain")]
        let manifest = ArtifactManifest(layers: layers, annotations: [ArtifactManifest.taskAnnotation: "make"])
        let bytes = try manifest.encoded()
        #expect(try manifest.encoded() == bytes, "the same files make the same bytes")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(json["schemaVersion"] as? Int == 2)
        #expect(json["mediaType"] as? String == "application/vnd.oci.image.manifest.v1+json")
        #expect(json["artifactType"] as? String == "application/vnd.dgrid.task.output.v1")
        let config = json["config"] as? [String: Any] ?? [:]
        #expect(config["mediaType"] as? String == "application/vnd.oci.empty.v1+json" && config["size"] as? Int == 2)
        #expect(config["digest"] as? String == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "the digest of {}")
        let first = (json["layers"] as? [[String: Any]])?.first ?? [:]
        #expect((first["annotations"] as? [String: String]) == ["org.opencontainers.image.title": "out/big.bin"])
        #expect(first["digest"] as? String == Self.digest.description && first["size"] as? Int == 3 << 20)
        #expect((json["annotations"] as? [String: String]) == ["org.dgrid.task": "make"])
        #expect(try ArtifactManifest.parse(bytes) == manifest)
    }

    @Test func aManifestOfAnotherKindIsRefused() throws {
        let good = String(decoding: try ArtifactManifest(layers: [.init(title: "a", digest: Self.digest, size: 1, mediaType: "text/plain")]).encoded(),
                          as: UTF8.self)
        let empty = ArtifactManifest.emptyDescriptor.digest.description
        for (bad, reason) in [
            (good.replacingOccurrences(of: "application/vnd.dgrid.task.output.v1", with: "application/vnd.other"), "artifactType"),
            (good.replacingOccurrences(of: empty, with: Self.digest.description), "empty descriptor"),
            (good.replacingOccurrences(of: #""schemaVersion":2"#, with: #""schemaVersion":1"#), "schemaVersion"),
            (good.replacingOccurrences(of: "org.opencontainers.image.title", with: "org.example.name"), "has no org.opencontainers.image.title"),
            (good.replacingOccurrences(of: "application/vnd.oci.image.manifest.v1+json", with: "application/vnd.docker.distribution.manifest.v2+json"), "mediaType"),
            ("{}", "missing"),
        ] {
            do {
                _ = try ArtifactManifest.parse(Array(bad.utf8))
                Issue.record("accepted: \(bad)")
            } catch {
                #expect(error.description.contains(reason), "\(error)")
            }
        }
    }

    @Test func theHelpersMessagesKeepTheirShape() throws {
        let request = ArtifactPushRequest(repository: "127.0.0.1:5000/grid/artifacts", tagStem: "make",
                                          files: [.init(title: "big.bin", mediaType: "application/octet-stream", fd: 3, path: "big.bin", size: 7)],
                                          annotations: [ArtifactPushRequest.taskAnnotation: "make"])
        let encoded = try JSONEncoder().encode(request)
        #expect(try JSONDecoder().decode(ArtifactPushRequest.self, from: encoded) == request)
        let text = String(decoding: encoded, as: UTF8.self)
        #expect(text.contains(#""tag_stem":"make""#) && text.contains(#""media_type":"application\/octet-stream""#), "\(text)")
        // Which failures are which, for the worker and the download.
        #expect(ArtifactHelperError.registry(.http(host: "h", what: "blob", status: 404, detail: "")).exit == .missing)
        #expect(ArtifactHelperError.registry(.image(.digestMismatch(expected: Self.digest, actual: Self.digest))).exit == .corrupt)
        #expect(ArtifactHelperError.registry(.image(.tooLong(digest: Self.digest, expectedSize: 1))).exit == .corrupt)
        #expect(ArtifactHelperError.registry(.connection(host: "h", message: "refused")).exit == .failed)
        #expect(ArtifactHelperError.source(title: "a", reason: "a symbolic link").exit == .failed)
    }
}
