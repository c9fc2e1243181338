import Foundation
import Logging
import Runner

/// One line per event on stderr: `time level message key=value…`, or a JSON
/// object per line with `--log-format json`.
struct LineLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        let all = metadata.merging(explicit ?? [:]) { $1 }
        // By hand, not ISO8601DateFormatter: that one is ICU's, and loading ICU's
        // calendar data cost an idle worker ~6 MiB of resident memory.
        let time = ISOTime.string(Date())
        let text: String
        if json {
            var object: [String: String] = ["time": time, "level": level.rawValue, "message": message.description]
            for (key, value) in all { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            text = String(decoding: data, as: UTF8.self)
        } else {
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quoted("\($0.value)"))" }
            text = ([time, level.rawValue, message.description] + fields).joined(separator: " ")
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Values with spaces or quotes are quoted, and control characters escaped, so one event stays one line.
    static func quoted(_ value: String) -> String {
        var escaped = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            default: escaped += scalar.value < 0x20 || scalar.value == 0x7f ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
            }
        }
        return escaped.contains(" ") || escaped != value || escaped.isEmpty ? "\"\(escaped)\"" : escaped
    }
}
