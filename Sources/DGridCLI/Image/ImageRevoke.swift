import ArgumentParser
import Sandbox

struct ImageRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Remove an image from the allowlist (by name, or every entry pinning a digest)."
    )

    @Argument(help: ArgumentHelp("The image.", valueName: "NAME[:TAG]|DIGEST"))
    var reference: String

    func run() throws {
        do {
            for entry in try ImageAdmin(store: ImageCLI.store()).revoke(reference) {
                print("revoked \(entry.name) \(entry.digest.map(\.description) ?? "-")")
            }
        } catch {
            ImageCLI.fail(error)
        }
    }
}
