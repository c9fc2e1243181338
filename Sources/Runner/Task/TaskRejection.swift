import Sandbox

/// Why a task file was refused: one line naming the field and the rule it broke,
/// with any text taken from the file escaped and capped (`UntrustedText.quoted`), so the
/// reason can go into a log, `tasks/rejected/<id>.json.log` or a terminal unchanged.
public struct TaskRejection: Error, Equatable, CustomStringConvertible, Sendable {
    public let reason: String
    /// The field that failed ("task_id", "resources.memory", "env.A-B"), nil when the
    /// whole file is at fault (size, syntax, top-level type).
    public let field: String?

    /// Longer reasons are cut; the field and rule come first, so nothing useful is lost.
    static let maxReasonLength = 300

    public init(reason: String, field: String? = nil) {
        // Callers escape attacker text already; this pass is the backstop that keeps
        // the promise of one clean line whatever a caller forgot.
        let capped = reason.unicodeScalars.count > Self.maxReasonLength
            ? String(String.UnicodeScalarView(reason.unicodeScalars.prefix(Self.maxReasonLength))) + "…" : reason
        self.reason = UntrustedText.lineSafe(capped)
        self.field = field
    }

    /// A rejection that names its field first: `field: rule`.
    static func field(_ name: String, _ rule: String) -> TaskRejection {
        TaskRejection(reason: "\(name): \(rule)", field: name)
    }

    public var description: String { reason }
}
