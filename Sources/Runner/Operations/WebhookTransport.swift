import Foundation
import Sandbox

/// What one POST came to.
public enum WebhookAnswer: Equatable, Sendable {
    /// The receiver answered with this status.
    case status(Int)
    /// No answer: refused, reset, timed out; why, in one line.
    case noAnswer(String)
}

/// Sends one signed POST; the dispatcher decides about retries.
public protocol WebhookTransport: Sendable {
    func post(_ url: WebhookURL, headers: [(String, String)], body: [UInt8], timeoutSeconds: Double) -> WebhookAnswer
}

/// The POST made by `dgrid-registry webhook post` (docs/ARCHITECTURE.md §12):
/// `dgrid-grid` carries no HTTP client (the worker's idle RSS), the registry
/// helper already links async-http-client with TLS, so https receivers work
/// and the worker pays a process start per attempt — webhooks are rare (a
/// health change, a security event, a scale signal), a start is ~10 ms, and
/// the helper's memory is gone when it exits. The request (URL, headers, body)
/// goes on its stdin as JSON; the secret never does: the body arrives signed.
/// The helper gets the attempt's timeout and is killed a little after it.
public struct HelperWebhookTransport: WebhookTransport {
    public let helper: String

    public init(helper: String = SiblingPath.beside(SiblingPath.registryHelper)) {
        self.helper = helper
    }

    /// What the helper reads on stdin (`WebhookPostRequest` in the Registry target has the same fields).
    struct Request: Encodable {
        let url: String
        let headers: [[String]]
        let body: String
        let timeoutSeconds: Double

        enum CodingKeys: String, CodingKey {
            case url, headers, body, timeoutSeconds = "timeout_seconds"
        }
    }

    public func post(_ url: WebhookURL, headers: [(String, String)], body: [UInt8], timeoutSeconds: Double) -> WebhookAnswer {
        let request = Request(url: url.description, headers: headers.map { [$0.0, $0.1] }, body: String(decoding: body, as: UTF8.self),
                              timeoutSeconds: timeoutSeconds)
        guard let input = try? JSONEncoder().encode(request) else { return .noAnswer("cannot encode the request") }
        switch HelperProcess.run(helper, ["webhook", "post"], input: Array(input), deadlineSeconds: timeoutSeconds + 2) {
        case .failure(let failure):
            return .noAnswer("\(failure)")
        case .success(let finished):
            if finished.timedOut { return .noAnswer("no answer within \(Int(timeoutSeconds)) s") }
            let out = String(decoding: finished.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if finished.status == 0, let status = Int(out), (100...599).contains(status) { return .status(status) }
            let line = String(decoding: finished.stderr, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "exit \(finished.status)"
            return .noAnswer(UntrustedText.lineSafe(line.hasPrefix("dgrid: ") ? String(line.dropFirst(7)) : line))
        }
    }
}
