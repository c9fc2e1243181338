import ArgumentParser
import Sandbox

struct ImageImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an OCI image layout (directory or tar) or a docker save tar.",
        discussion: """
        Every blob is verified by digest and size and every layer is unpacked now, so a bad
        image is refused here. The image is named from the archive (OCI ref.name, docker
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
            let unpacked = image.layers.filter { $0.report != nil }.count
            for name in image.names {
                print("\(name) \(image.manifest.digest)")
            }
            ImageCLI.note("imported \(image.names.joined(separator: ", ")): \(image.layers.count) layers (\(unpacked) unpacked now)")
            for layer in image.layers {
                guard let report = layer.report else { continue }
                if !report.droppedSetuid.isEmpty {
                    ImageCLI.note("layer \(layer.diffID.short): setuid/setgid dropped on \(report.droppedSetuid.count) files")
                }
                if !report.skippedDevices.isEmpty {
                    ImageCLI.note("layer \(layer.diffID.short): \(report.skippedDevices.count) device files skipped")
                }
            }
            for warning in image.warnings {
                ImageCLI.note("warning: \(warning)")
            }
        }
    }
}
