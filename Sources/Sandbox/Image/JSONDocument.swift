import FoundationEssentials
import SandboxSupport

/// JSON in and out for image documents, with decoding errors turned into one
/// readable line ("manifest sha256:…: layers[2].digest: invalid digest …").
package enum JSONDocument {
    package static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws(ImageError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw .invalidDocument(what: what, reason: reason(error))
        } catch {
            throw .invalidDocument(what: what, reason: "not valid JSON (\(error))")
        }
    }

    /// Sorted keys, no escaped slashes; pretty for files people read.
    package static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws(ImageError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            : [.sortedKeys, .withoutEscapingSlashes]
        do {
            var bytes = Array(try encoder.encode(value))
            if pretty { bytes.append(UInt8(ascii: "\n")) }
            return bytes
        } catch {
            throw .invalidDocument(what: "\(T.self)", reason: "cannot encode: \(error)")
        }
    }

    private static func reason(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ extra: CodingKey? = nil) -> String {
            var text = ""
            for key in context.codingPath + (extra.map { [$0] } ?? []) {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text.isEmpty ? "document" : UntrustedText.shown(text, limit: 120)
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context, key)): missing"
        case .typeMismatch(let type, let context):
            return "\(path(context)): expected \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context)): expected \(typeName(type)), found null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "not valid JSON" }
            return "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "not a valid document"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}
