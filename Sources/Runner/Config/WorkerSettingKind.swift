import Logging
import Sandbox

/// The type of one setting and its allowed range. Text (flags, environment)
/// and TOML values are both parsed here, so a value means the same wherever
/// it comes from.
public enum WorkerSettingKind: Sendable, Equatable {
    case count(ClosedRange<Int>)
    case seconds(ClosedRange<Double>)
    case bytes(ClosedRange<UInt64>)
    case cpus(ClosedRange<Double>)
    case image
    case nodeID
    case logLevel
    /// An absolute path on this host, or "" for none.
    case path
    /// A registry repository, `HOST[:PORT]/PATH`, or "" for none (`ArtifactRepository`).
    case artifactRepository
    /// `IP:PORT` for the metrics listener, or "" for none (`ListenAddress`).
    case listenAddress
    /// An http(s) URL for webhook events, or "" for none (`WebhookURL`).
    case webhookURL

    /// Said in errors: "expected <this>".
    var expected: String {
        switch self {
        case .count(let range): "a whole number in \(range.lowerBound)...\(range.upperBound)"
        case .seconds(let range): "a number of seconds in \(Self.number(range.lowerBound))...\(Self.number(range.upperBound))"
        case .bytes(let range):
            "a size in \(ByteCount(bytes: range.lowerBound))...\(ByteCount(bytes: range.upperBound)) (bytes as an integer, or a string such as \"512m\")"
        case .cpus(let range): "a number of CPUs in \(Self.number(range.lowerBound))...\(Self.number(range.upperBound))"
        case .image: "an image reference such as \"dgrid/busybox:latest\" or \"NAME@sha256:…\""
        case .nodeID: "a node id: A-Z a-z 0-9 . _"
        case .logLevel: "one of " + Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
        case .path: "an absolute path, or \"\" for none"
        case .artifactRepository: "a registry repository HOST[:PORT]/PATH such as \"127.0.0.1:5000/grid/artifacts\", or \"\" for none"
        case .listenAddress: "an address and port such as \"\(ListenAddress.suggested)\" or \"[::1]:9464\", or \"\" for none"
        case .webhookURL: "an http:// or https:// URL such as \"https://hooks.example/dgrid\", or \"\" for none"
        }
    }

    /// Parses a flag's or an environment variable's text.
    func parse(text: String) throws(WorkerSettingProblem) -> WorkerSettingValue {
        let trimmed = text.trimmingWhitespace()
        switch self {
        case .count:
            guard let number = Int(trimmed) else { throw .badValue("\(UntrustedText.quoted(text)) is not \(expected)") }
            return try check(.count(number))
        case .seconds:
            guard let number = Double(trimmed), number.isFinite else { throw .badValue("\(UntrustedText.quoted(text)) is not \(expected)") }
            return try check(.seconds(number))
        case .cpus:
            guard let number = Double(trimmed), number.isFinite else { throw .badValue("\(UntrustedText.quoted(text)) is not \(expected)") }
            return try check(.cpus(number))
        case .bytes:
            do {
                return try check(.bytes(try ByteCount(parsing: trimmed)))
            } catch let error as WorkerSettingProblem {
                throw error
            } catch {
                throw .badValue("\(UntrustedText.quoted(text)) is not \(expected)")
            }
        case .image:
            do {
                return .image(try ImageReference(parsing: trimmed))
            } catch {
                // The reason only: ImageError repeats the text, shown by its own rules.
                guard case .invalidReference(_, let reason) = error else { throw .badValue("\(UntrustedText.quoted(text)) is not \(expected)") }
                throw .badValue("\(UntrustedText.quoted(text)) is not \(expected): \(reason)")
            }
        case .nodeID:
            if let problem = NodeIdentifier.problem(trimmed) { throw .badValue(problem) }
            return .nodeID(trimmed)
        case .path:
            guard trimmed.isEmpty || (trimmed.hasPrefix("/") && !trimmed.utf8.contains(0) && trimmed.utf8.count <= 4096) else {
                throw .badValue("\(UntrustedText.quoted(text)) is not \(expected)")
            }
            return .path(trimmed)
        case .artifactRepository:
            guard !trimmed.isEmpty else { return .repository(nil) }
            do {
                return .repository(try ArtifactRepository(parsing: trimmed))
            } catch {
                throw .badValue(error.description)
            }
        case .listenAddress:
            guard !trimmed.isEmpty else { return .listen(nil) }
            do {
                return .listen(try ListenAddress(parsing: trimmed))
            } catch {
                throw .badValue(error.description)
            }
        case .webhookURL:
            guard !trimmed.isEmpty else { return .webhook(nil) }
            do {
                return .webhook(try WebhookURL(parsing: trimmed))
            } catch {
                throw .badValue(error.description)
            }
        case .logLevel:
            guard let level = Logger.Level(rawValue: trimmed.lowercased()) else { throw .badValue("\(UntrustedText.quoted(text)) is not \(expected)") }
            return .logLevel(level)
        }
    }

    /// Parses a value from the config file: numbers must be TOML numbers
    /// (a quoted "4" is a mistake worth reporting), sizes may also be strings.
    func parse(file value: ConfigFileValue) throws(WorkerSettingProblem) -> WorkerSettingValue {
        switch (self, value) {
        case (.count, .integer(let number)): return try check(.count(number))
        case (.seconds, .integer(let number)): return try check(.seconds(Double(number)))
        case (.seconds, .float(let number)): return try check(.seconds(number))
        case (.cpus, .integer(let number)): return try check(.cpus(Double(number)))
        case (.cpus, .float(let number)): return try check(.cpus(number))
        case (.bytes, .integer(let number)):
            guard number >= 0 else { throw .outOfRange("\(number) is negative; expected \(expected)") }
            return try check(.bytes(ByteCount(bytes: UInt64(number))))
        case (.bytes, .string(let text)), (.image, .string(let text)), (.nodeID, .string(let text)), (.logLevel, .string(let text)), (.path, .string(let text)),
             (.artifactRepository, .string(let text)), (.listenAddress, .string(let text)), (.webhookURL, .string(let text)):
            return try parse(text: text)
        default:
            throw .wrongType(expected: expected, found: value.typeName)
        }
    }

    private func check(_ value: WorkerSettingValue) throws(WorkerSettingProblem) -> WorkerSettingValue {
        let inside: Bool
        switch (self, value) {
        case (.count(let range), .count(let number)): inside = range.contains(number)
        case (.seconds(let range), .seconds(let number)): inside = number.isFinite && range.contains(number)
        case (.cpus(let range), .cpus(let number)): inside = number.isFinite && range.contains(number)
        case (.bytes(let range), .bytes(let size)): inside = range.contains(size.bytes)
        default: inside = true
        }
        guard inside else { throw .outOfRange("\(value) is out of range; expected \(expected)") }
        return value
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// What is wrong with one value, before the resolver adds where it came from.
public enum WorkerSettingProblem: Error, Equatable, Sendable {
    case wrongType(expected: String, found: String)
    case outOfRange(String)
    case badValue(String)

    var message: String {
        switch self {
        case .wrongType(let expected, let found): "expected \(expected), found \(found)"
        case .outOfRange(let text), .badValue(let text): text
        }
    }
}
