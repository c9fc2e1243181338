import TestSupport
@testable import SandboxIsolation
import SandboxSupport

/// The runner for this host and specs on the shared test rootfs (TestSupport's TestRootfs).
enum Fixture {
    static let runner = SandboxRunner.forThisHost()

    static func rootfs() throws -> String { try TestRootfs.shared() }

    /// A private copy of the rootfs that a test may damage.
    static func rootfsCopy() throws -> String { try TestRootfs.copy() }

    /// Layer directories a test made by hand, as the store would hand them
    /// over: each named by a digest (here of its path, as no tar made it).
    static func layers(_ directories: [String]) -> SandboxRoot {
        .layers(directories.map { StoredLayer(diffID: Digest(of: Array($0.utf8)), directory: $0) })
    }

    /// A spec on the shared rootfs with the given shell script.
    static func shell(_ script: String) throws -> SandboxSpec {
        var spec = SandboxSpec(rootfs: try rootfs(), command: ["/bin/sh", "-c", script])
        spec.timeoutSeconds = 60
        spec.seccomp = try DefaultSeccomp.filter()
        return spec
    }
}
