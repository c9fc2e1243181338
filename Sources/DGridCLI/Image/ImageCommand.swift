import ArgumentParser

/// `dgrid image …` (docs/ARCHITECTURE.md §8): bring images in, decide which may run, keep the store clean.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Import and pull images, manage the allowlist, verify and clean the image store.",
        discussion: "`dgrid image pull` runs in dgrid-registry; `dgrid image pull --help` shows its options.",
        subcommands: [ImageImport.self, ImagePullVerb.self, ImageAllow.self, ImageRevoke.self, ImageList.self, ImageInspect.self,
                      ImageVerify.self, ImageGC.self]
    )
}
