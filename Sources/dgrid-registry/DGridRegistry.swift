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
        subcommands: [RegistryImageCommand.self]
    )

    static func main() {
        StandardStreams.ensureOpen()
        ImageAllow.resolveOnRegistry = { allow, store in
            try ImageAdmin(store: store).allowFromRegistry(
                allow.reference, approvedBy: allow.approvedBy ?? ImageCLI.invokingUser(), note: allow.note,
                options: allow.registry.clientOptions(store: store))
        }
        DGrid.run(Self.self)
    }
}

struct RegistryImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Pull images from registries; allow images by a registry tag.",
        subcommands: [ImagePull.self, ImageAllow.self]
    )
}
