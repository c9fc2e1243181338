import ArgumentParser
import DGridCLI
import FoundationEssentials
import Glibc
import Registry
import Sandbox

/// `dgrid-registry webhook post`: one signed webhook POST for `dgrid worker`
/// and `dgrid metrics --watch` (docs/ARCHITECTURE.md §12), which carry no HTTP
/// client. Hidden from help. The request is JSON on stdin (URL, headers, the
/// body as signed, the timeout); the receiver's status goes to stdout; no
/// answer is one line on stderr and exit 1. Retries are the caller's.
struct WebhookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook",
        abstract: "Send one webhook POST for the worker (its helper).",
        shouldDisplay: false,
        subcommands: [WebhookPostCommand.self]
    )
}

struct WebhookPostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "post",
        abstract: "POST the request read as JSON on stdin; print the receiver's status.")

    /// Events are small; a request past this is not the worker's.
    static let requestLimit = 64 * 1024

    func run() throws {
        ArtifactCommand.dieWithParent()
        var input: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while input.count <= Self.requestLimit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            input += chunk[0..<n]
        }
        guard input.count <= Self.requestLimit else { Self.fail("the request on stdin is over \(Self.requestLimit) bytes") }
        let request: WebhookPoster.Request
        do {
            request = try JSONDecoder().decode(WebhookPoster.Request.self, from: Data(input))
        } catch {
            Self.fail("the request on stdin is not a webhook request: \(error)")
        }
        switch WebhookPoster.post(request) {
        case .success(let status):
            print(status)
        case .failure(let failure):
            Self.fail("\(failure)")
        }
    }

    static func fail(_ message: String) -> Never {
        ImageCLI.note(message)
        Glibc.exit(1)
    }
}
