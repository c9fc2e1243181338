import ArgumentParser
import DGridCLI
import Foundation
import Registry
import Sandbox

/// `dgrid-registry server-date --url URL`: the `Date` an http(s) server
/// answers with, as JSON (`ServerDateReading`). `dgrid doctor` runs it for an
/// http(s) grid's clock check (docs/ARCHITECTURE.md §12): the grid's binary
/// links no HTTP stack. Hidden: a helper's verb, not a user's.
struct ServerDateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server-date",
        abstract: "Print the Date header an http(s) server answers a GET of URL with, and this host's clock around it, as JSON (dgrid doctor's helper).",
        shouldDisplay: false)

    @Option(help: ArgumentHelp("The http(s) URL to GET (no credentials are sent).", valueName: "URL"))
    var url: String

    @Option(help: ArgumentHelp("Seconds to wait for the answer.", valueName: "SECONDS"))
    var timeout: Int64 = 10

    func run() throws {
        do {
            let reading = try ServerDateProbe.read(url: url, timeoutSeconds: max(1, min(timeout, 300)))
            print(ImageCLI.json(reading))
        } catch {
            ImageCLI.fail(error)
        }
    }
}
