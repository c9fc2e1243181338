import ArgumentParser
import Sandbox

struct ImageAllow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allow",
        abstract: "Allow an image to run, pinned to its digest.",
        discussion: """
        NAME[:TAG] is resolved through the local image index (import it first); NAME@DIGEST pins
        a manifest already in the store. Tasks may then name the image, and always run the pinned
        digest. Prints the pinned digest.
        """
    )

    @Argument(help: ArgumentHelp("The image.", valueName: "NAME[:TAG|@DIGEST]"))
    var reference: String

    @Option(name: .long, help: ArgumentHelp("Who approved it (default: the invoking user).", valueName: "WHO"))
    var approvedBy: String?

    @Option(name: .long, help: ArgumentHelp("Why it is allowed.", valueName: "TEXT"))
    var note: String?

    @Option(name: .long, help: ArgumentHelp(
        "Scanner to run first; {layout} is replaced by an OCI layout of the image. Split into words without a shell.",
        valueName: "CMD"))
    var scanCommand: String?

    func run() throws {
        let result: ImageAdmin.AllowResult
        do {
            result = try ImageAdmin(store: ImageCLI.store()).allow(
                reference, approvedBy: approvedBy ?? ImageCLI.invokingUser(), note: note, scanCommand: scanCommand)
        } catch {
            ImageCLI.fail(error)
        }
        let entry = result.entry
        if let scan = entry.vulnerabilities, scanCommand != nil {
            ImageCLI.note("scan exited \(scan.exitStatus): \(scan.summary.isEmpty ? "(no output)" : scan.summary)")
        }
        if let previous = result.previous?.digest, previous != entry.digest {
            ImageCLI.note("\(entry.name) was pinned to \(previous); now re-pinned")
        }
        print("\(entry.name) \(entry.digest.map(\.description) ?? "-")")
    }
}
