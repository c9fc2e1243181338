import ArgumentParser
import Sandbox

struct ImageImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an OCI image layout (directory or tar) or a docker save tar.",
        discussion: """
        Every blob is verified by digest and size and every layer is unpacked now, so a bad \
        image is refused here. The image is named from the archive (OCI ref.name, docker \
        RepoTags) or by --name. Importing does not allow it to run: see `dgrid image allow`.
        """
    )

    @Argument(help: ArgumentHelp("OCI layout directory, OCI layout tar, or docker save tar.", valueName: "PATH"))
    var path: String

    @Option(name: .long, help: ArgumentHelp("Local name for the image.", valueName: "NAME[:TAG]"))
    var name: String?

    func run() throws {
        let store = ImageCLI.store()
        let imported: [ImportedImage]
        do {
            imported = try ImageImporter(store: store).importImages(from: path, name: name)
        } catch {
            ImageCLI.fail(error)
        }
        for image in imported {
            ImageCLI.report(image, verb: "imported")
        }
    }
}
