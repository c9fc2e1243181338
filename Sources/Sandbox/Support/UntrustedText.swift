/// Text dgrid did not write — image member names and config values, task ids
/// and fields, node and result records, registry and Git server messages —
/// made safe to print on a terminal or put in one log line (docs/THREATS.md,
/// T13). The one place that decides what is dangerous; every printing and
/// logging path uses it (docs/ARCHITECTURE.md §8, "Printing untrusted text").
///
/// Escaped as `\u{…}`: C0 controls and DEL (ESC starts every ANSI sequence, CR
/// and LF forge lines), C1 controls (0x9B is a one-byte CSI, 0x9D an OSC), the
/// line and paragraph separators, and every format character (Unicode
/// category Cf): bidi embeddings, overrides and isolates (U+202A–202E,
/// U+2066–2069, the marks U+200E/200F/061C) that reorder what the reader
/// sees, zero-width characters (U+200B–200D, U+2060, U+FEFF) that hide text,
/// the soft hyphen, tag characters. Invalid UTF-8 (from byte input) is shown
/// as `\x{..}` per byte, so it cannot be mistaken for the replacement
/// character a decoder would substitute.
public enum UntrustedText {
    /// Scalars cut from longer texts; enough for any name or id, and short
    /// enough that a megabyte of task id cannot flood a log.
    public static let defaultLimit = 200

    /// `text` escaped (dangerous scalars and `\`) and capped at `limit` scalars
    /// with a trailing `…`. Escaping the backslash keeps the result unambiguous:
    /// a literal `\u{1b}` in the input reads back as `\\u{1b}`.
    public static func shown(_ text: String, limit: Int = defaultLimit) -> String {
        render(text.unicodeScalars, limit: limit, escapeBackslash: true, quote: nil)
    }

    /// `text` in double quotes, escaped as `shown` with `"` escaped too.
    public static func quoted(_ text: String, limit: Int = 64) -> String {
        "\"" + render(text.unicodeScalars, limit: limit, escapeBackslash: true, quote: "\"") + "\""
    }

    /// Raw bytes (a C string, a tar header field): valid UTF-8 as `shown`,
    /// each byte of an invalid sequence as `\x{..}`.
    public static func shown(bytes: some Collection<UInt8>, limit: Int = defaultLimit) -> String {
        let bytes = Array(bytes)
        var out = ""
        var count = 0
        var index = 0
        while index < bytes.count {
            if count >= limit {
                out += "…"
                break
            }
            let lead = bytes[index]
            let length = lead < 0x80 ? 1 : (0xC2...0xDF).contains(lead) ? 2 : (0xE0...0xEF).contains(lead) ? 3
                : (0xF0...0xF4).contains(lead) ? 4 : 0
            if length > 0, index + length <= bytes.count,
               let decoded = String(validating: bytes[index..<index + length], as: UTF8.self),
               let scalar = decoded.unicodeScalars.first {
                out += piece(scalar, escapeBackslash: true, quote: nil)
                index += length
            } else {
                // Not the start of a valid sequence: this byte alone, then resynchronise.
                out += "\\x{" + hex(lead) + "}"
                index += 1
            }
            count += 1
        }
        return out
    }

    /// A line built by dgrid that may hold untrusted parts: only the dangerous
    /// scalars escaped (no cap; `\` and quotes left as they are, since parts
    /// were escaped by `shown` already). The last pass before a terminal or a log.
    public static func lineSafe(_ line: String) -> String {
        guard line.unicodeScalars.contains(where: isDangerous) else { return line }
        return render(line.unicodeScalars, limit: Int.max, escapeBackslash: false, quote: nil)
    }

    /// JSON text with every dangerous scalar inside its strings written as a
    /// `\uXXXX` escape: the same JSON value, nothing a terminal acts on. (JSON
    /// encoders escape C0 only.) Outside strings, valid JSON holds nothing
    /// dangerous but its whitespace — the line breaks and tabs of pretty
    /// printing — which is kept; anything else there is escaped all the same.
    public static func jsonSafe(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: isDangerous) else { return json }
        var out = String.UnicodeScalarView()
        var inString = false
        var escapedNext = false
        for scalar in json.unicodeScalars {
            if inString {
                if escapedNext { escapedNext = false } else if scalar == "\\" { escapedNext = true } else if scalar == "\"" { inString = false }
            } else if scalar == "\"" {
                inString = true
            }
            let jsonWhitespace = !inString && (scalar == "\n" || scalar == "\r" || scalar == "\t")
            guard isDangerous(scalar), !jsonWhitespace else {
                out.append(scalar)
                continue
            }
            for unit in String(scalar).utf16 {
                let digits = String(unit, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - digits.count) + digits).unicodeScalars)
            }
        }
        return String(out)
    }

    /// Whether a terminal or a log reader could be fooled by `scalar` shown raw.
    public static func isDangerous(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .unassigned, .privateUse:
            return true
        default:
            // Letters that render as nothing (Hangul fillers), used to hide text.
            return [0x115F, 0x1160, 0x3164, 0xFFA0].contains(scalar.value)
        }
    }

    private static func render(_ scalars: String.UnicodeScalarView, limit: Int, escapeBackslash: Bool,
                               quote: Unicode.Scalar?) -> String {
        var out = ""
        var count = 0
        for scalar in scalars {
            if count >= limit {
                out += "…"
                break
            }
            out += piece(scalar, escapeBackslash: escapeBackslash, quote: quote)
            count += 1
        }
        return out
    }

    private static func piece(_ scalar: Unicode.Scalar, escapeBackslash: Bool, quote: Unicode.Scalar?) -> String {
        if isDangerous(scalar) { return "\\u{" + String(scalar.value, radix: 16) + "}" }
        if escapeBackslash && scalar == "\\" { return "\\\\" }
        if let quote, scalar == quote { return "\\" + String(scalar) }
        return String(scalar)
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }
}
