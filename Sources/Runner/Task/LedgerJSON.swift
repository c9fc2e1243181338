/// JSON values for ledger documents (task files, result, claim and node records).
///
/// A hand-written reader rather than JSONSerialization because every byte it reads
/// comes from a repository writer (docs/THREATS.md, attacker 3), and we need guarantees
/// Foundation does not document: a fixed nesting limit (no stack overflow on
/// `[[[[…`), duplicate keys refused (Python's reader keeps the last, others the
/// first — two parsers must never see two different tasks in one file), strict
/// UTF-8, and integers kept apart from booleans and from `"30"`.
enum LedgerJSON {
    /// Deeper documents are refused. Task files are three levels deep; 64 leaves
    /// room for any unknown field while keeping recursion shallow.
    static let maxDepth = 64

    indirect enum Value: Equatable, Sendable {
        case null
        case bool(Bool)
        case number(Number)
        case string(String)
        case array([Value])
        case object([String: Value])

        /// "a string", "an integer" … for messages that say what was found.
        var kind: String {
            switch self {
            case .null: return "null"
            case .bool: return "true or false"
            case .number(let number): return number.integer != nil ? "an integer" : "a number"
            case .string: return "a string"
            case .array: return "an array"
            case .object: return "an object"
            }
        }
    }

    /// A number keeps its literal so integers survive exactly (no trip through Double).
    struct Number: Equatable, Sendable {
        let literal: String

        init(literal: String) { self.literal = literal }
        init(_ value: Int64) { literal = String(value) }
        init(_ value: UInt64) { literal = String(value) }

        /// Non-finite values have no JSON form; callers write null instead.
        init?(_ value: Double) {
            guard value.isFinite else { return nil }
            literal = "\(value)"
        }

        var double: Double { Double(literal) ?? .nan }

        /// The exact value when the number is integral and fits in Int64: `30`, `30.0`
        /// and `3e1` all give 30; `30.5`, `1e30` and `6000000000000000.4` give nil.
        /// Worked out on the decimal digits, not through a Double, which would round.
        var integer: Int64? {
            guard let text = integerText else { return nil }
            return Int64(text)
        }

        /// Like `integer`, for counts that may exceed Int64 (byte sizes).
        var unsigned: UInt64? {
            guard let text = integerText, !text.hasPrefix("-") else { return nil }
            return UInt64(text)
        }

        /// The literal as a plain decimal integer ("-30"), or nil if it has a fraction.
        private var integerText: String? {
            var rest = Substring(literal)
            let negative = rest.first == "-"
            if negative { rest = rest.dropFirst() }
            var exponent = 0
            if let e = rest.firstIndex(where: { $0 == "e" || $0 == "E" }) {
                // Beyond ±400 nothing integral fits in 64 bits (or the value is 0.x).
                guard let value = Int(rest[rest.index(after: e)...]), abs(value) <= 400 else { return nil }
                exponent = value
                rest = rest[..<e]
            }
            let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
            let digits = Array(parts[0] + (parts.count > 1 ? parts[1] : ""))
            let point = parts[0].count + exponent
            guard point >= 0 else { return digits.allSatisfy { $0 == "0" } ? "0" : nil }
            if point < digits.count {
                guard digits[point...].allSatisfy({ $0 == "0" }) else { return nil }
            }
            var whole = String(digits.prefix(point)) + String(repeating: "0", count: max(0, point - digits.count))
            whole = String(whole.drop(while: { $0 == "0" }))
            if whole.isEmpty { return "0" }
            return negative ? "-" + whole : whole
        }
    }

    /// Where and why the bytes are not JSON.
    struct SyntaxError: Error, Equatable, Sendable {
        let message: String
        let offset: Int
    }

    static func parse(_ bytes: [UInt8]) -> Result<Value, SyntaxError> {
        var reader = LedgerJSONReader(bytes: bytes)
        do {
            return .success(try reader.document())
        } catch {
            return .failure(error)
        }
    }
}
