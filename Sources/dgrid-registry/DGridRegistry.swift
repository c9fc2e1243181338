import ArgumentParser
import DGridCLI
import Registry
import Sandbox

/// `dgrid-registry`: the verbs that reach OCI registries (async-http-client
/// and NIO). Users run it through `dgrid`, which execs it for `image pull` and
/// for `image allow REGISTRY/NAME:TAG`, so its command tree is named `dgrid`.
/// Kept apart from the grid's binary so a long-running worker does not carry
/// the HTTP stack's code (see SiblingBinary).
@main
struct DGridRegistry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dgrid",
        abstract: "dgrid's registry verbs (run through `dgrid`).",
        version: DGrid.version,
        subcommands: [RegistryImageCommand.self, ArtifactCommand.self, ServerDateCommand.self, WebhookCommand.self]
    )

    static func main() {
        StandardStreams.ensureOpen()
        DGrid.exitIfLayerHelper()  // `image pull` unpacks layers too
        DGrid.run(Self.self)
    }
}

struct RegistryImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Pull images from registries; allow images by a registry tag.",
        subcommands: [ImagePull.self, RegistryImageAllow.self]
    )
}

/// `image allow` with a registry tag resolved here (no pull): `dgrid`'s own
/// `image allow` hands such a reference over. The resolver is passed in, not
/// set in a global by `main`.
struct RegistryImageAllow: ParsableCommand {
    static let configuration = ImageAllow.configuration

    @OptionGroup var allow: ImageAllow

    func run() throws {
        try allow.allow { allow, store in
            try ImageAdmin(store: store).allowFromRegistry(
                allow.reference, approvedBy: allow.approvedBy ?? ImageCLI.invokingUser(), note: allow.note,
                options: allow.registry.clientOptions(store: store))
        }
    }
}
