/// `dgrid worker --print-config`: every effective setting and where it came
/// from, as aligned text or as JSON (`{"key": {"value": …, "source": …}}`).
public enum WorkerConfigReport {
    public static func text(_ config: WorkerConfig, file: String?) -> String {
        let width = WorkerSettingKey.allCases.map(\.rawValue.count).max() ?? 0
        var lines = ["# config file: \(file ?? "none (\(WorkerConfigLocation.systemPath) and $DGRID_HOME/worker.toml absent)")"]
        for key in WorkerSettingKey.allCases {
            guard let entry = config.entries[key] else { continue }
            let name = key.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
            let value = entry.value.description.padding(toLength: max(22, entry.value.description.count), withPad: " ", startingAt: 0)
            lines.append("\(name)  \(value)  # \(entry.source)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func json(_ config: WorkerConfig, file: String?) -> String {
        var fields: [String] = []
        for key in WorkerSettingKey.allCases {
            guard let entry = config.entries[key] else { continue }
            var source = "{\"kind\":\"\(entry.source.kind)\""
            switch entry.source {
            case .flag(let name): source += ",\"flag\":\(JSONText.quoted(name))"
            case .environment(let name): source += ",\"variable\":\(JSONText.quoted(name))"
            case .file(let path): source += ",\"path\":\(JSONText.quoted(path))"
            case .defaultValue: break
            }
            fields.append("\"\(key.rawValue)\":{\"value\":\(entry.value.jsonLiteral),\"source\":\(source)}}")
        }
        let fileField = file.map(JSONText.quoted) ?? "null"
        return "{\"config_file\":\(fileField),\"settings\":{\(fields.joined(separator: ","))}}\n"
    }
}
