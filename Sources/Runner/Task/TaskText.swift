/// Attacker text made safe to put in one log line or error message: control and
/// invisible-formatting characters escaped (no forged log lines, no terminal escape
/// sequences, no bidi tricks), quoted, and capped so a 1 MB task id cannot flood a log.
enum TaskText {
    static let defaultLimit = 64

    static func shown(_ text: String, limit: Int = defaultLimit) -> String {
        var out = "\""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            out += escaped(scalar)
            count += 1
        }
        return out + "\""
    }

    /// Escapes what must never reach a log line raw; leaves our own text alone otherwise.
    static func escaped(_ scalar: Unicode.Scalar) -> String {
        switch scalar.value {
        case 0x5C: return "\\\\"
        case 0x22: return "\\\""
        case 0x00..<0x20, 0x7F..<0xA0,        // C0, DEL, C1 (CSI is 0x9B)
             0x200B...0x200F, 0x2028...0x202E, // zero-width, line/paragraph separators, bidi embeddings
             0x2066...0x2069, 0xFEFF:          // bidi isolates, BOM
            return "\\u{" + String(scalar.value, radix: 16) + "}"
        default:
            return String(scalar)
        }
    }
}
