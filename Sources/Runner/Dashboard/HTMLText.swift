import Sandbox

/// Text dgrid did not write, put into the dashboard's HTML and SVG
/// (docs/THREATS.md, T26). `UntrustedText` decides what is dangerous to a
/// reader (controls, bidi overrides, zero-width characters: escaped as
/// `\u{…}`, so nothing is hidden or reordered); on top of it the five
/// characters that mean something to an HTML or XML parser become entities,
/// so a value is inert both as element text and inside a double-quoted
/// attribute. No untrusted value is ever put in a URL, a style, a script or
/// an attribute name.
enum HTMLText {
    /// One value in a line, capped at `limit` scalars (then `…`).
    static func shown(_ text: String, limit: Int) -> String {
        markup(UntrustedText.shown(text, limit: limit))
    }

    /// Several lines (an output excerpt): each line made safe as `UntrustedText.lineSafe`
    /// makes a log line, the line breaks kept for a `<pre>`. The caller bounds the text.
    static func lines(_ text: String) -> String {
        // By scalar: "\r\n" is one Character, and a CR must be shown, not taken for half a line break.
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
            .map { markup(UntrustedText.lineSafe(String(String.UnicodeScalarView($0)))) }
            .joined(separator: "\n")
    }

    /// `&`, `<`, `>`, `"` and `'` as character references.
    static func markup(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The most bytes one untrusted scalar can become: a dangerous one is
    /// `\u{10ffff}` (10 bytes); `&` is `&amp;` (5). Page bounds multiply by it.
    static let maxBytesPerScalar = 10
}
