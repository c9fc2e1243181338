import ArgumentParser

/// `dgrid image …` (docs/ARCHITECTURE.md §8): bring images in, decide which may run, keep the store clean.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Import images, manage the allowlist, verify and clean the image store.",
        discussion: "`dgrid image pull NAME@DIGEST` fetches an allowlisted image from its registry (see `dgrid image pull --help`).",
        subcommands: [ImageImport.self, ImageAllow.self, ImageRevoke.self, ImageList.self, ImageInspect.self,
                      ImageVerify.self, ImageGC.self]
    )
}
