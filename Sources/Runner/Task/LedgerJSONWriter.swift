/// Writes ledger documents the way D-GRID's Python writes them (`json.dump(…,
/// indent=2, sort_keys=True)`): two-space indent, `"key": value`, keys sorted by
/// their UTF-8 bytes so the output is the same on every platform and diffs stay small.
extension LedgerJSON {
    static func write(_ value: Value, pretty: Bool = true) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        append(value, to: &out, indent: pretty ? 0 : nil)
        if pretty { out.append(0x0A) }
        return out
    }

    /// Compact text for one value (used to keep unknown task fields verbatim).
    static func compact(_ value: Value) -> String {
        String(decoding: write(value, pretty: false), as: UTF8.self)
    }

    private static func append(_ value: Value, to out: inout [UInt8], indent: Int?) {
        switch value {
        case .null: out += Array("null".utf8)
        case .bool(let flag): out += Array((flag ? "true" : "false").utf8)
        case .number(let number): out += Array(number.literal.utf8)
        case .string(let text): appendString(text, to: &out)
        case .array(let elements):
            appendContainer(open: "[", close: "]", count: elements.count, to: &out, indent: indent) { out, i, inner in
                append(elements[i], to: &out, indent: inner)
            }
        case .object(let members):
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            appendContainer(open: "{", close: "}", count: keys.count, to: &out, indent: indent) { out, i, inner in
                appendString(keys[i], to: &out)
                out += Array((indent == nil ? ":" : ": ").utf8)
                // Every key came from `members`, so the lookup cannot miss.
                append(members[keys[i]] ?? .null, to: &out, indent: inner)
            }
        }
    }

    private static func appendContainer(
        open: Unicode.Scalar, close: Unicode.Scalar, count: Int, to out: inout [UInt8], indent: Int?,
        element: (inout [UInt8], Int, Int?) -> Void
    ) {
        out.append(UInt8(ascii: open))
        guard count > 0 else { out.append(UInt8(ascii: close)); return }
        let inner = indent.map { $0 + 2 }
        for i in 0..<count {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            if let inner { newline(inner, to: &out) }
            element(&out, i, inner)
        }
        if let indent { newline(indent, to: &out) }
        out.append(UInt8(ascii: close))
    }

    private static func newline(_ indent: Int, to out: inout [UInt8]) {
        out.append(0x0A)
        out += repeatElement(UInt8(ascii: " "), count: indent)
    }

    /// Escapes quotes, backslashes and every control character; other text is UTF-8 as is.
    private static func appendString(_ text: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x00..<0x20, 0x7F:
                out += Array("\\u00".utf8)
                out += [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
