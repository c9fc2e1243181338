import Logging
import Sandbox

/// One setting's parsed value, typed: sizes are `ByteCount`, images are
/// `ImageReference`, durations are seconds (the unit every `*_seconds` key names).
public enum WorkerSettingValue: Sendable, Equatable, CustomStringConvertible {
    case count(Int)
    case seconds(Double)
    case bytes(ByteCount)
    case cpus(Double)
    case image(ImageReference)
    case nodeID(String)
    case logLevel(Logger.Level)
    case path(String)
    /// nil: none.
    case repository(ArtifactRepository?)
    /// The metrics listener's address; nil: no listener (docs/ARCHITECTURE.md §12).
    case listen(ListenAddress?)
    /// Where webhook events go; nil: nowhere.
    case webhook(WebhookURL?)

    public var description: String {
        switch self {
        case .count(let number): "\(number)"
        case .seconds(let number): WorkerSettingKind.number(number)
        case .bytes(let size): size.description
        case .cpus(let number): WorkerSettingKind.number(number)
        case .image(let reference): reference.description
        case .nodeID(let id): id
        case .logLevel(let level): level.rawValue
        case .path(let path): path
        case .repository(let repository): repository?.description ?? ""
        case .listen(let address): address?.description ?? ""
        case .webhook(let url): url?.description ?? ""
        }
    }

    /// The value as a JSON literal for `--print-config --json`: numbers stay
    /// numbers (sizes in bytes), text is quoted.
    var jsonLiteral: String {
        switch self {
        case .count(let number): "\(number)"
        case .seconds(let number), .cpus(let number): WorkerSettingKind.number(number)
        case .bytes(let size): "\(size.bytes)"
        case .image, .nodeID, .logLevel, .path, .repository, .listen, .webhook: JSONText.quoted(description)
        }
    }
}

/// Where an effective setting came from, in precedence order (DESIGN §8).
public enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    /// The command-line flag, as typed: `--slots` or `--set max_memory=…`.
    case flag(String)
    /// The environment variable's name.
    case environment(String)
    /// The config file's path.
    case file(String)
    case defaultValue

    public var description: String {
        switch self {
        case .flag(let name): "flag \(name)"
        case .environment(let name): "env \(name)"
        case .file(let path): "file \(path)"
        case .defaultValue: "default"
        }
    }

    /// `flag`, `env`, `file` or `default`, for the JSON form.
    var kind: String {
        switch self {
        case .flag: "flag"
        case .environment: "env"
        case .file: "file"
        case .defaultValue: "default"
        }
    }
}

/// One effective setting and where it came from.
public struct ResolvedSetting: Sendable, Equatable {
    public let value: WorkerSettingValue
    public let source: SettingSource
}

enum JSONText {
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
