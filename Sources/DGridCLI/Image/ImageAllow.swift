import ArgumentParser
import Sandbox

package struct ImageAllow: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "allow",
        abstract: "Allow an image to run, pinned to its digest.",
        discussion: """
        NAME[:TAG] is resolved through the local image index; a REGISTRY/NAME:TAG not in it is \
        resolved on its registry (--insecure for plain HTTP), without pulling. NAME@DIGEST pins \
        a manifest already in the store. Tasks may then name the image, and always run the pinned \
        digest. Prints the pinned digest.
        """
    )

    @Argument(help: ArgumentHelp("The image.", valueName: "NAME[:TAG|@DIGEST]"))
    package var reference: String

    @Option(name: .long, help: ArgumentHelp("Who approved it (default: the invoking user).", valueName: "WHO"))
    package var approvedBy: String?

    @Option(name: .long, help: ArgumentHelp("Why it is allowed.", valueName: "TEXT"))
    package var note: String?

    @Option(name: .long, help: ArgumentHelp(
        "Scanner to run first; {layout} is replaced by an OCI layout of the image. Split into words without a shell.",
        valueName: "CMD"))
    var scanCommand: String?

    @OptionGroup package var registry: RegistryCLIOptions

    /// Resolves a reference on its registry without pulling: `dgrid-registry`
    /// has one (RegistryImageAllow); `dgrid` has none and hands such a
    /// reference to `dgrid-registry` instead.
    package typealias RegistryResolver = (ImageAllow, ImageStore) throws -> ImageAdmin.AllowResult

    package init() {}

    package func run() throws {
        try allow(resolvingOnRegistry: nil)
    }

    package func allow(resolvingOnRegistry: RegistryResolver?) throws {
        let result: ImageAdmin.AllowResult
        let store = ImageCLI.store()
        do {
            result = try ImageAdmin(store: store).allow(
                reference, approvedBy: approvedBy ?? ImageCLI.invokingUser(), note: note, scanCommand: scanCommand)
        } catch ImageError.unknownImage(let name) where scanCommand == nil && RegistryLocation.namesRegistry(name) {
            // Not in the local index: resolve the tag on its registry (no pull).
            guard let resolveOnRegistry = resolvingOnRegistry else {
                SiblingBinary.exec(Array(CommandLine.arguments.dropFirst()), in: SiblingBinary.registryFileName)
            }
            do {
                result = try resolveOnRegistry(self, store)
            } catch {
                ImageCLI.fail(error)
            }
        } catch {
            ImageCLI.fail(error)
        }
        let entry = result.entry
        if let scan = entry.vulnerabilities, scanCommand != nil {
            ImageCLI.note("scan exited \(scan.exitStatus): \(scan.summary.isEmpty ? "(no output)" : UntrustedText.shown(scan.summary, limit: 400))")
        }
        if let previous = result.previous?.digest, previous != entry.digest {
            ImageCLI.note("\(entry.name) was pinned to \(previous); now re-pinned")
        }
        print("\(entry.name) \(entry.digest.map(\.description) ?? "-")")
    }
}
