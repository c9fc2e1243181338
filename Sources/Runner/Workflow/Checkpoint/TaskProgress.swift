import Sandbox

/// How far a task says it is (docs/ARCHITECTURE.md §10): a number 0–100 and an
/// optional message, from `/checkpoint/progress` or a `::progress 42 message`
/// line on stdout. Carried by the claim's renewals; `dgrid status` shows it.
struct TaskProgress: Equatable, Sendable {
    let percent: Int
    let message: String

    static let stdoutPrefix = "::progress "
    static let fileName = "progress"

    /// "42", "42 message", "42.5 % message": the number first; nil for anything else.
    init?(line: String) {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        guard !number.isEmpty, let value = Double(number), value.isFinite, (0...100).contains(value) else { return nil }
        percent = Int(value)
        var rest = trimmed.dropFirst(number.count).drop { $0 == " " || $0 == "\t" }
        if rest.first == "%" { rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" } }
        message = UntrustedText.shown(String(rest.prefix { $0 != "\n" && $0 != "\r" }), limit: 120)
    }

    /// The claim record's `progress`: "42%" or "42% message".
    var text: String { message.isEmpty ? "\(percent)%" : "\(percent)% \(message)" }
}
