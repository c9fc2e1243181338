import Sandbox
/// A value as the TOML file spelled it, before it is checked against its key:
/// the resolver sees this, never TOMLKit's types, so it is tested without files.
public enum ConfigFileValue: Sendable, Equatable {
    case integer(Int)
    case float(Double)
    case string(String)
    case boolean(Bool)
    /// Tables, arrays, dates: never valid for a worker setting.
    case other(typeName: String)

    /// Said in "expected …, found <this>".
    var typeName: String {
        switch self {
        case .integer: "an integer"
        case .float: "a floating-point number"
        case .string(let text): "a string (\(UntrustedText.quoted(text, limit: 40)))"
        case .boolean: "a boolean"
        case .other(let name): name
        }
    }
}
