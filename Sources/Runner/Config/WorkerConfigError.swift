import Sandbox
/// Why a worker's configuration was refused. Each case names the key and
/// where the bad value came from (file path, variable or flag), and what to do;
/// the worker does not start with any of them.
public enum WorkerConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case unparsable(path: String, line: Int, column: Int, reason: String)
    /// Refused, not warned: a misspelt `max_memroy` would otherwise leave the
    /// operator believing a limit applies that does not.
    case unknownKey(key: String, source: SettingSource)
    case invalid(key: WorkerSettingKey, source: SettingSource, problem: WorkerSettingProblem)
    /// Two settings that are each valid but contradict each other.
    case inconsistent(key: WorkerSettingKey, source: SettingSource, reason: String)

    /// Values and unknown keys are shown through `UntrustedText.shown`: a file or
    /// variable may hold terminal escapes, and this text reaches logs and ttys.
    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "cannot read the worker config \(path): \(reason); fix the path given to --config or DGRID_CONFIG"
        case .unparsable(let path, let line, let column, let reason):
            "worker config \(path), line \(line), column \(column): not valid TOML: \(reason)"
        case .unknownKey(let key, let source):
            "\(Self.place(source)): unknown key \(UntrustedText.quoted(key)); valid keys: \(WorkerSettingKey.validKeyList)"
        case .invalid(let key, let source, let problem):
            "\(Self.place(source)): \(key.rawValue): \(problem.message)"
        case .inconsistent(let key, let source, let reason):
            "\(Self.place(source)): \(key.rawValue): \(reason)"
        }
    }

    static func place(_ source: SettingSource) -> String {
        switch source {
        case .file(let path): "worker config \(path)"
        case .environment(let name): "environment variable \(name)"
        case .flag(let name): "flag \(name)"
        case .defaultValue: "default"
        }
    }
}
