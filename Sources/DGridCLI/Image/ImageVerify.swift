import ArgumentParser
import Sandbox

struct ImageVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Rehash every blob; move corrupt ones to images/quarantine/ and exit 1 if any."
    )

    func run() throws {
        let report: VerifyReport
        do {
            report = try ImageCLI.store().content.verifyAll()
        } catch {
            ImageCLI.fail(error)
        }
        for corrupt in report.corrupt {
            print(UntrustedText.lineSafe("corrupt \(corrupt.name): \(corrupt.problem); moved to \(corrupt.quarantinedAt ?? "nowhere")"))
        }
        print("verified \(report.checked) blobs (\(ImageCLI.size(report.bytes))): \(report.corrupt.count) corrupt")
        if !report.corrupt.isEmpty {
            ImageCLI.note("\(report.corrupt.count) corrupt blobs quarantined; re-import the images that used them")
            throw ExitCode(1)
        }
    }
}
