import Foundation

/// The ledger's network operations, each bounded by its own overall deadline.
public enum GitOperationKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Connecting and reading the remote's refs (ls-remote).
    case list
    /// Downloading objects (a listing and a pack).
    case fetch
    /// A push: the listing of the remote's refs, then the pack and the ref updates.
    case push

    public var description: String { rawValue }
}

/// How long each kind of network operation may take in all, whatever the
/// server does. The idle timeout (LibGit2.networkIdleTimeoutSeconds) alone does
/// not bound an operation: a server that sends one byte every few seconds is
/// never idle, and would hold the operation — and every Git step of the worker
/// queued behind it — for as long as it likes (docs/THREATS.md, T10).
public struct GitDeadlines: Sendable, Equatable, CustomStringConvertible {
    /// A listing is one round trip of a few kilobytes.
    public var list: Double = 30
    /// A fetch can bring a large main after a busy fold; far longer than a listing.
    public var fetch: Double = 300
    /// A claim, result or heartbeat push: a listing and a small pack.
    public var push: Double = 60

    public init() {}

    public init(list: Double, fetch: Double, push: Double) {
        self.list = list
        self.fetch = fetch
        self.push = push
    }

    public subscript(kind: GitOperationKind) -> Double {
        get {
            switch kind {
            case .list: list
            case .fetch: fetch
            case .push: push
            }
        }
        set {
            switch kind {
            case .list: list = newValue
            case .fetch: fetch = newValue
            case .push: push = newValue
            }
        }
    }

    /// "list=30,fetch=300,push=60" (any subset; the rest keep their defaults).
    public init(parsing text: String) throws(DeadlineParseError) {
        self.init()
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let kind = GitOperationKind(rawValue: parts[0]) else {
                throw DeadlineParseError(text: text, problem: "'\(item)' is not KIND=SECONDS with KIND one of list, fetch, push")
            }
            guard let seconds = Double(parts[1]), seconds.isFinite, seconds > 0, seconds <= 86_400 else {
                throw DeadlineParseError(text: text, problem: "'\(parts[1])' is not a number of seconds between 0 and 86400")
            }
            self[kind] = seconds
        }
    }

    public var description: String {
        GitOperationKind.allCases.map { "\($0)=\(Self.shown(self[$0]))" }.joined(separator: ",")
    }

    static func shown(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}

/// A deadline setting that cannot be read.
public struct DeadlineParseError: Error, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String {
        "Git deadlines '\(text)': \(problem); e.g. list=30,fetch=300,push=60"
    }
}
