import Sandbox

/// The RFC 8259 grammar over a byte array, recursive descent with a depth limit.
/// Kept separate from `LedgerJSON` so the value types read without the parser.
struct LedgerJSONReader {
    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func document() throws(LedgerJSON.SyntaxError) -> LedgerJSON.Value {
        // Editors on Windows prepend a UTF-8 byte-order mark; RFC 8259 lets readers skip it.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        skipWhitespace()
        let value = try value()
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected text after the JSON value") }
        return value
    }

    // MARK: values

    private mutating func value() throws(LedgerJSON.SyntaxError) -> LedgerJSON.Value {
        guard let byte = peek() else { throw fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return try nested { (r: inout Self) throws(LedgerJSON.SyntaxError) in try r.object() }
        case UInt8(ascii: "["): return try nested { (r: inout Self) throws(LedgerJSON.SyntaxError) in try r.array() }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character")
        }
    }

    /// Counts nesting so `[[[[…` ten thousand deep is an error, not a stack overflow.
    private mutating func nested(
        _ body: (inout Self) throws(LedgerJSON.SyntaxError) -> LedgerJSON.Value
    ) throws(LedgerJSON.SyntaxError) -> LedgerJSON.Value {
        depth += 1
        guard depth <= LedgerJSON.maxDepth else { throw fail("nested more than \(LedgerJSON.maxDepth) levels deep") }
        let result = try body(&self)
        depth -= 1
        return result
    }

    private mutating func object() throws(LedgerJSON.SyntaxError) -> LedgerJSON.Value {
        index += 1  // {
        var members: [String: LedgerJSON.Value] = [:]
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
            let keyOffset = index
            let key = try string()
            skipWhitespace()
            try expect(":")
            skipWhitespace()
            let member = try value()
            guard members.updateValue(member, forKey: key) == nil else {
                throw LedgerJSON.SyntaxError(message: "duplicate key \(UntrustedText.quoted(key))", offset: keyOffset)
            }
            skipWhitespace()
            if peek() == UInt8(ascii: ",") { index += 1; continue }
            try expect("}")
            return .object(members)
        }
    }

    private mutating func array() throws(LedgerJSON.SyntaxError) -> LedgerJSON.Value {
        index += 1  // [
        var elements: [LedgerJSON.Value] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try value())
            skipWhitespace()
            if peek() == UInt8(ascii: ",") { index += 1; continue }
            try expect("]")
            return .array(elements)
        }
    }

    // MARK: scalars

    private mutating func string() throws(LedgerJSON.SyntaxError) -> String {
        let start = index
        index += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard let byte = peek() else { throw fail("unterminated string") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else {
                    throw LedgerJSON.SyntaxError(message: "string is not valid UTF-8", offset: start)
                }
                return text
            case UInt8(ascii: "\\"):
                try escape(into: &utf8)
            case 0x00..<0x20:
                throw fail("control character in a string (escape it)", at: index - 1)
            default:
                utf8.append(byte)
            }
        }
    }

    private mutating func escape(into utf8: inout [UInt8]) throws(LedgerJSON.SyntaxError) {
        guard let byte = peek() else { throw fail("unterminated string") }
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var code = try hex4()
            if (0xD800..<0xDC00).contains(code) {
                // A high surrogate must be followed by an escaped low one.
                guard peek() == UInt8(ascii: "\\"), peek(1) == UInt8(ascii: "u") else { throw fail("lone surrogate in \\u escape") }
                index += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw fail("lone surrogate in \\u escape") }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(code) {
                throw fail("lone surrogate in \\u escape")
            }
            guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
            utf8.append(contentsOf: String(Character(scalar)).utf8)
        default:
            throw fail("invalid escape", at: index - 1)
        }
    }

    private mutating func hex4() throws(LedgerJSON.SyntaxError) -> UInt32 {
        var code: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = peek() else { throw fail("unterminated \\u escape") }
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            code = code << 4 | digit
            index += 1
        }
        return code
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as its literal.
    private mutating func number() throws(LedgerJSON.SyntaxError) -> LedgerJSON.Number {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else {
            guard digits() > 0 else { throw fail("invalid number", at: start) }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw fail("invalid number", at: start) }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw fail("invalid number", at: start) }
        }
        // Only ASCII digits and signs were consumed, so this always decodes.
        return LedgerJSON.Number(literal: String(decoding: bytes[start..<index], as: UTF8.self))
    }

    private mutating func digits() -> Int {
        var count = 0
        while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            index += 1
            count += 1
        }
        return count
    }

    // MARK: helpers

    private func peek(_ ahead: Int = 0) -> UInt8? {
        index + ahead < bytes.count ? bytes[index + ahead] : nil
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
            index += 1
        }
    }

    private mutating func literal(_ word: String) throws(LedgerJSON.SyntaxError) {
        let expected = Array(word.utf8)
        guard bytes.count - index >= expected.count, bytes[index..<index + expected.count].elementsEqual(expected) else {
            throw fail("unexpected character")
        }
        index += expected.count
    }

    private mutating func expect(_ character: Unicode.Scalar) throws(LedgerJSON.SyntaxError) {
        guard peek() == UInt8(ascii: character) else {
            throw fail(peek() == nil ? "unexpected end of input" : "expected '\(character)'")
        }
        index += 1
    }

    private func fail(_ message: String, at offset: Int? = nil) -> LedgerJSON.SyntaxError {
        LedgerJSON.SyntaxError(message: message, offset: offset ?? index)
    }
}
