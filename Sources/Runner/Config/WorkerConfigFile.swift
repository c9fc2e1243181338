import Foundation
import TOMLKit

/// The worker's TOML config file, read into plain values. Top-level keys only:
/// a flat file is what an operator greps and what `DGRID_<KEY>` mirrors.
public struct WorkerConfigFile: Sendable, Equatable {
    public let path: String
    public let values: [String: ConfigFileValue]

    public init(path: String, values: [String: ConfigFileValue]) {
        self.path = path
        self.values = values
    }

    /// Files larger than this are refused unread: a config is a few KB.
    static let maxBytes = 1 << 20

    public static func load(path: String) throws(WorkerConfigError) -> WorkerConfigFile {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maxBytes + 1) ?? Data()
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        guard data.count <= maxBytes else { throw .unreadable(path: path, reason: "larger than \(maxBytes) bytes") }
        guard let text = String(data: data, encoding: .utf8) else { throw .unreadable(path: path, reason: "not UTF-8") }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws(WorkerConfigError) -> WorkerConfigFile {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .unparsable(path: path, line: error.source.begin.line, column: error.source.begin.column, reason: error.description)
        } catch {
            throw .unparsable(path: path, line: 0, column: 0, reason: "\(error)")
        }
        var values: [String: ConfigFileValue] = [:]
        for key in table.keys {
            guard let value = table[key] else { continue }
            values[key] = convert(value)
        }
        return WorkerConfigFile(path: path, values: values)
    }

    private static func convert(_ value: TOMLValueConvertible) -> ConfigFileValue {
        switch value.type {
        case .int: value.int.map(ConfigFileValue.integer) ?? .other(typeName: "an integer too large")
        case .double: value.double.map(ConfigFileValue.float) ?? .other(typeName: "a number")
        case .string: value.string.map(ConfigFileValue.string) ?? .other(typeName: "a string")
        case .bool: value.bool.map(ConfigFileValue.boolean) ?? .other(typeName: "a boolean")
        case .table: .other(typeName: "a table")
        case .array: .other(typeName: "an array")
        case .date, .time, .dateTime: .other(typeName: "a date or time")
        }
    }
}

/// Which config file a worker reads: `--config PATH`, else `$DGRID_CONFIG`
/// (both must exist), else `$DGRID_HOME/worker.toml`, else
/// `/etc/dgrid/worker.toml` (each used only when present).
public enum WorkerConfigLocation {
    public static let systemPath = "/etc/dgrid/worker.toml"

    public static func path(flag: String?, environment: [String: String],
                            exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> (path: String, required: Bool)? {
        if let flag, !flag.isEmpty { return (flag, true) }
        if let named = environment["DGRID_CONFIG"], !named.isEmpty { return (named, true) }
        if let home = environment["DGRID_HOME"], !home.isEmpty, exists(home + "/worker.toml") {
            return (home + "/worker.toml", false)
        }
        return exists(systemPath) ? (systemPath, false) : nil
    }

    /// The file at `path(…)`, loaded; nil when none is configured or present.
    public static func load(flag: String?, environment: [String: String]) throws(WorkerConfigError) -> WorkerConfigFile? {
        guard let (path, _) = Self.path(flag: flag, environment: environment) else { return nil }
        return try WorkerConfigFile.load(path: path)
    }
}
