import Foundation
import Testing
import TestSupport
import Sandbox

/// The one "show untrusted text safely" helper (docs/THREATS.md, T13): a
/// table of hostile strings, each shown without anything a terminal or a log
/// reader acts on, on one line, capped.
@Suite(.unit) struct UntrustedTextTests {
    struct Row: CustomStringConvertible, Sendable {
        let name: String
        let input: String
        /// What `shown` must give (nil: only the general rules are checked).
        let expected: String?
        var description: String { name }
    }

    static let rows: [Row] = [
        Row(name: "plain", input: "busybox:latest", expected: "busybox:latest"),
        Row(name: "non-ASCII letters stay", input: "café-λ-日本", expected: "café-λ-日本"),
        Row(name: "ESC CSI clear screen", input: "a\u{1b}[2Jb", expected: "a\\u{1b}[2Jb"),
        Row(name: "ESC colour", input: "\u{1b}[31mred\u{1b}[0m", expected: "\\u{1b}[31mred\\u{1b}[0m"),
        Row(name: "OSC 8 hyperlink", input: "\u{1b}]8;;https://evil.example\u{1b}\\click\u{1b}]8;;\u{1b}\\",
            expected: "\\u{1b}]8;;https://evil.example\\u{1b}\\\\click\\u{1b}]8;;\\u{1b}\\\\"),
        Row(name: "OSC 52 clipboard with BEL", input: "\u{1b}]52;c;ZWNobyBwd24=\u{7}", expected: "\\u{1b}]52;c;ZWNobyBwd24=\\u{7}"),
        Row(name: "C1 CSI 0x9B", input: "x\u{9b}2Jy", expected: "x\\u{9b}2Jy"),
        Row(name: "C1 OSC 0x9D and ST 0x9C", input: "\u{9d}0;title\u{9c}", expected: "\\u{9d}0;title\\u{9c}"),
        Row(name: "every C1", input: String(String.UnicodeScalarView((0x80...0x9F).map { Unicode.Scalar($0)! })), expected: nil),
        Row(name: "NEL 0x85", input: "a\u{85}b", expected: "a\\u{85}b"),
        Row(name: "CR overwrite", input: "ok\rFAILED", expected: "ok\\u{d}FAILED"),
        Row(name: "LF forged line", input: "t1\n2026-12-03 info worker stopped", expected: "t1\\u{a}2026-12-03 info worker stopped"),
        Row(name: "NUL", input: "a\u{0}b", expected: "a\\u{0}b"),
        Row(name: "DEL and backspace", input: "abc\u{8}\u{8}\u{7f}", expected: "abc\\u{8}\\u{8}\\u{7f}"),
        Row(name: "bidi RLO", input: "invoice\u{202e}fdp.exe", expected: "invoice\\u{202e}fdp.exe"),
        Row(name: "bidi embeddings", input: "\u{202a}\u{202b}\u{202c}\u{202d}", expected: "\\u{202a}\\u{202b}\\u{202c}\\u{202d}"),
        Row(name: "bidi isolates", input: "\u{2066}a\u{2067}b\u{2068}c\u{2069}", expected: "\\u{2066}a\\u{2067}b\\u{2068}c\\u{2069}"),
        Row(name: "bidi marks", input: "\u{200e}\u{200f}\u{61c}", expected: "\\u{200e}\\u{200f}\\u{61c}"),
        Row(name: "zero-width", input: "ad\u{200b}min\u{200c}\u{200d}", expected: "ad\\u{200b}min\\u{200c}\\u{200d}"),
        Row(name: "word joiner and BOM", input: "\u{2060}x\u{feff}", expected: "\\u{2060}x\\u{feff}"),
        Row(name: "line and paragraph separators", input: "a\u{2028}b\u{2029}c", expected: "a\\u{2028}b\\u{2029}c"),
        Row(name: "soft hyphen and tag characters", input: "a\u{ad}b\u{e0041}", expected: "a\\u{ad}b\\u{e0041}"),
        Row(name: "Hangul filler", input: "x\u{3164}y", expected: "x\\u{3164}y"),
        Row(name: "literal escape text stays distinguishable", input: "\\u{1b}", expected: "\\\\u{1b}"),
        Row(name: "very long line", input: String(repeating: "A", count: 1_000_000), expected: String(repeating: "A", count: 200) + "…"),
        Row(name: "long run of escapes", input: String(repeating: "\u{1b}", count: 10_000), expected: nil),
    ]

    @Test(arguments: rows)
    func shown(_ row: Row) {
        let out = UntrustedText.shown(row.input)
        if let expected = row.expected { #expect(out == expected) }
        #expect(!out.unicodeScalars.contains(where: UntrustedText.isDangerous), "a dangerous scalar got through: \(out.debugDescription)")
        #expect(out.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7f }, "one line, no controls")
        #expect(out.unicodeScalars.count <= UntrustedText.defaultLimit * 8 + 1, "capped")
        // The backstop and the JSON form are inert too.
        #expect(!UntrustedText.lineSafe(row.input).unicodeScalars.contains(where: UntrustedText.isDangerous))
        #expect(!UntrustedText.quoted(row.input).unicodeScalars.contains(where: UntrustedText.isDangerous))
    }

    @Test func quotedEscapesItsQuote() {
        #expect(UntrustedText.quoted("say \"hi\"\n") == "\"say \\\"hi\\\"\\u{a}\"")
        #expect(UntrustedText.quoted(String(repeating: "x", count: 100)) == "\"" + String(repeating: "x", count: 64) + "…\"")
    }

    /// Invalid UTF-8 from byte input: each bad byte shown as `\x{..}`, the valid rest kept.
    @Test func invalidUTF8Bytes() {
        let bytes: [UInt8] = [0x61, 0xff, 0x62, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xe2, 0x80, 0xae, 0xc3, 0xa9, 0xf0, 0x9f, 0x98]
        #expect(UntrustedText.shown(bytes: bytes)
            == "a\\x{ff}b\\x{c3}(\\x{ed}\\x{a0}\\x{80}\\u{202e}é\\x{f0}\\x{9f}\\x{98}")
        #expect(UntrustedText.shown(bytes: [UInt8](repeating: 0x80, count: 1000)).hasSuffix("…"))
    }

    /// The JSON form keeps the value: decoding it gives back the original string.
    @Test func jsonSafeKeepsTheValue() throws {
        let value = "a\u{9b}b\u{202e}c\u{200b}d\u{e0041}e\"\\"
        let json = "{\"k\":\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"}"
        let safe = UntrustedText.jsonSafe(json)
        #expect(safe == #"{"k":"a\u009bb\u202ec\u200bd\udb40\udc41e\"\\"}"#)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(safe.utf8))
        #expect(decoded["k"] == value)
    }

    /// Pretty-printed JSON keeps its line breaks (whitespace between tokens is
    /// not text anyone chose); only what sits inside strings is escaped.
    @Test func jsonSafeKeepsPrettyPrintingLayout() throws {
        let object = ["env": ["PATH=/bin", "X=\u{9b}2J\u{202e}"]]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let pretty = String(decoding: try encoder.encode(object), as: UTF8.self)
        let safe = UntrustedText.jsonSafe(pretty)
        #expect(safe.split(separator: "\n").count == pretty.split(separator: "\n").count, "\(safe)")
        #expect(safe.contains(#""X=\u009b2J\u202e""#), "\(safe)")
        #expect(try JSONDecoder().decode([String: [String]].self, from: Data(safe.utf8)) == object)
    }
}
