import Foundation
import Logging
import Runner
import Sandbox

/// One line per event on stderr: `time level message key=value…`, or a JSON
/// object per line with `--log-format json`. When stderr is the journal
/// (`journal`, from `JournalStream`), each line starts with its syslog
/// priority (`<6>`) instead, and text lines drop the time: the journal
/// stamps every line itself, and a second stamp would only be noise.
struct LineLogHandler: LogHandler {
    let label: String
    let json: Bool
    var journal = false
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
            text = UntrustedText.jsonSafe(String(decoding: data, as: UTF8.self))
        } else {
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quoted("\($0.value)"))" }
            // Messages interpolate task ids and server text: inert, and one line.
            text = ((journal ? [] : [time]) + [level.rawValue, UntrustedText.lineSafe(message.description)] + fields).joined(separator: " ")
        }
        let prefix = journal ? JournalStream.priorityPrefix(level) : ""
        FileHandle.standardError.write(Data((prefix + text + "\n").utf8))
    }

    /// Values with spaces, quotes or anything `UntrustedText` escapes are quoted
    /// and escaped, so one event stays one inert line.
    static func quoted(_ value: String) -> String {
        let escaped = UntrustedText.shown(value, limit: Int.max).replacing("\"", with: "\\\"")
        return escaped.contains(" ") || escaped != value || escaped.isEmpty ? "\"\(escaped)\"" : escaped
    }
}
