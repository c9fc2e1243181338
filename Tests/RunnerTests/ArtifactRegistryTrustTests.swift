import Foundation
import Sandbox
import Testing
@testable import Runner
import TestSupport

/// Which registry a registry artifact may be fetched from (docs/THREATS.md,
/// T19): a record is anyone's to push, so its location must parse strictly and
/// name a repository this host trusts — nothing else is ever contacted.
@Suite(.unit) struct ArtifactRegistryTrustTests {
    static let digest = Digest(of: Array("payload".utf8))
    static let trusted = [try! ArtifactRepository(parsing: "127.0.0.1:5000/grid/artifacts")]

    static func artifact(_ location: String) -> Artifact {
        Artifact(path: "big.bin", size: 7, digest: digest, mediaType: "application/octet-stream", store: .registry, location: location)
    }

    @Test func onlyATrustedRepositoryIsFetchedFrom() throws {
        let manifest = Digest(of: Array("m".utf8))
        let ok = ArtifactFetch.registrySource(of: Self.artifact("127.0.0.1:5000/grid/artifacts@\(manifest)"), trusting: Self.trusted)
        #expect(try ok.get() == Self.trusted[0])
        // The host spelled otherwise is the same repository.
        #expect((try? ArtifactFetch.registrySource(of: Self.artifact("127.0.0.1:5000/grid/artifacts@\(manifest)"), trusting: Self.trusted).get()) != nil)
        for (location, expected) in [
            ("10.0.0.9:5000/grid/artifacts@\(manifest)", "refused: stored in 10.0.0.9:5000/grid/artifacts"),
            ("127.0.0.1:5001/grid/artifacts@\(manifest)", "refused: stored in 127.0.0.1:5001/grid/artifacts"),
            ("127.0.0.1:5000/grid/other@\(manifest)", "refused: stored in 127.0.0.1:5000/grid/other"),
            ("169.254.169.254/latest@\(manifest)", "refused: stored in 169.254.169.254/latest"),
            ("127.0.0.1:5000/grid/artifacts", "corrupt: "),
            ("https://127.0.0.1:5000/grid/artifacts@\(manifest)", "corrupt: "),
            ("/var/lib/dgrid/artifacts/sha256/\(Self.digest.hex)", "corrupt: "),
        ] {
            let result = ArtifactFetch.registrySource(of: Self.artifact(location), trusting: Self.trusted)
            guard case .failure(let failure) = result else {
                Issue.record("accepted \(location)")
                continue
            }
            #expect(failure.description.hasPrefix(expected), "\(location): \(failure)")
        }
        // Trusting none: every registry artifact is refused, with what would allow it.
        let none = ArtifactFetch.registrySource(of: Self.artifact("127.0.0.1:5000/grid/artifacts@\(manifest)"), trusting: [])
        guard case .failure(let failure) = none else { Issue.record("accepted with no trusted registry"); return }
        #expect(failure.description.contains("none is configured") && failure.description.contains("--artifact-registry"), "\(failure)")
    }

    @Test func aDownloadTrustsItsFlagsElseTheWorkersVariable() throws {
        let both = try ArtifactFetch.trustedRegistries(flags: ["127.0.0.1:5000/a", "Reg.Example:443/b"],
                                                       environment: ["DGRID_ARTIFACT_REGISTRY": "10.0.0.1:5000/c"])
        #expect(both.map(\.description) == ["127.0.0.1:5000/a", "reg.example:443/b"])
        #expect(try ArtifactFetch.trustedRegistries(flags: [], environment: ["DGRID_ARTIFACT_REGISTRY": "10.0.0.1:5000/c"]).map(\.description)
                == ["10.0.0.1:5000/c"])
        #expect(try ArtifactFetch.trustedRegistries(flags: [], environment: [:]).isEmpty)
        #expect(throws: GridError.self) { try ArtifactFetch.trustedRegistries(flags: ["grid/artifacts"], environment: [:]) }
    }

    @Test func theRegistryStoreRoundTripsThroughTheRecord() throws {
        let artifact = Self.artifact("127.0.0.1:5000/grid/artifacts@\(Digest(of: Array("m".utf8)))")
        #expect(Artifact.parse(artifact.value()) == artifact)
    }

    @Test func theSettingIsARepositoryOrNothing() throws {
        let config = try WorkerConfigResolverTests.resolve(toml: "artifact_registry = \"Registry.Example:5000/grid/artifacts\"")
        #expect(config.artifactRegistry?.description == "registry.example:5000/grid/artifacts")
        var settings = GridSettings(repository: "file:///grid", nodeID: "w1", state: StateDirectory(path: "/nonexistent"))
        config.apply(to: &settings)
        #expect(settings.artifactRegistry == config.artifactRegistry)
        #expect(try WorkerConfigResolverTests.resolve(environment: ["DGRID_ARTIFACT_REGISTRY": ""]).artifactRegistry == nil)
        let fromFlag = try WorkerConfigResolverTests.resolve(flags: [try .init(assignment: "artifact_registry=127.0.0.1:5000/x")])
        #expect(fromFlag.artifactRegistry?.description == "127.0.0.1:5000/x")
        #expect(WorkerConfigResolverTests.refusal(toml: "artifact_registry = \"grid/artifacts\"").contains(
            "artifact_registry: \"grid/artifacts\" is not a registry artifact location: no repository after the registry host")
            || WorkerConfigResolverTests.refusal(toml: "artifact_registry = \"grid/artifacts\"").contains("is not a registry host"))
        #expect(WorkerConfigResolverTests.refusal(toml: "artifact_registry = 5").contains("found an integer"))
    }
}
