import ArgumentParser
import DGridCLI
import Registry
import Sandbox

/// `dgrid-remote`: the verbs that reach registries (and, with the grid, Git).
/// Users run it through `dgrid`, which execs it for these verbs, so its
/// command tree is named `dgrid` and its help reads as `dgrid`'s.
@main
struct DGridRemote: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dgrid",
        abstract: "dgrid's registry and grid verbs (run through `dgrid`).",
        version: DGrid.version,
        subcommands: [RemoteImageCommand.self, GridInitCommand.self, GridSubmitCommand.self, GridWorkerCommand.self,
                      GridStatusCommand.self, GridResultCommand.self, GridFoldCommand.self]
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

struct RemoteImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Pull images from registries; allow images by a registry tag.",
        subcommands: [ImagePull.self, ImageAllow.self]
    )
}
