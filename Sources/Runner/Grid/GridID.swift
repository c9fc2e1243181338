/// A grid's identity (docs/ARCHITECTURE.md §9): `g-` and 32 lowercase hex digits,
/// random, fixed when the grid is first initialised by dgrid and kept in
/// `.dgrid/grid.json` on main. A signed task names the grid it is for, so a
/// signature made for one grid cannot be replayed on another.
public struct GridID: Hashable, Sendable, CustomStringConvertible, Codable {
    public let value: String

    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 34, text.hasPrefix("g-"),
              bytes[2...].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
        value = text
    }

    public static func random() -> GridID {
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<16).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte >> 4, radix: 16) + String(byte & 0xf, radix: 16)
        }.joined()
        return GridID("g-" + hex)!
    }

    public var description: String { value }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = GridID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a grid id"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// `.dgrid/grid.json` on main: `{"grid_id": "g-…"}`.
enum GridIDFile {
    static let path = ".dgrid/grid.json"

    static func encode(_ id: GridID) -> [UInt8] {
        Array("{\"grid_id\":\"\(id.value)\"}\n".utf8)
    }

    /// The id in the file's bytes, nil when they are not the file dgrid writes.
    static func decode(_ bytes: [UInt8]) -> GridID? {
        guard case .success(.object(let members)) = LedgerJSON.parse(bytes),
              case .string(let text)? = members["grid_id"] else { return nil }
        return GridID(text)
    }
}
