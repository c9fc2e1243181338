import Foundation

/// Scrubs secrets from a task's output before its result leaves the worker
/// (docs/ARCHITECTURE.md §9): the worker's own credentials, well-known token
/// shapes, the values of task `env` entries the host's policy marks secret,
/// and the policy's own patterns. Each match becomes `[REDACTED:kind]`; the
/// counts by kind go in the result record, never the values.
public struct OutputRedactor: Sendable {
    /// A secret to find: a fixed string or a pattern, and the kind it is shown as.
    struct Rule: @unchecked Sendable {
        let kind: String
        let literal: String?
        let pattern: Regex<AnyRegexOutput>?
    }

    let rules: [Rule]

    /// Token shapes worth catching anywhere (each documented by its issuer).
    static let wellKnown: [(kind: String, pattern: String)] = [
        ("pem_private_key", #"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"#),
        ("aws_access_key", #"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"#),
        ("github_token", #"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"#),
        ("gitlab_token", #"\bglpat-[A-Za-z0-9_-]{20,}"#),
        ("slack_token", #"\bxox[abposr]-[A-Za-z0-9-]{10,}"#),
        ("jwt", #"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"#),
    ]

    /// Compiled once per process: every result is scanned with them.
    private static let wellKnownRules: [Rule] = wellKnown.compactMap { entry in
        (try? Regex(entry.pattern)).map { Rule(kind: entry.kind, literal: nil, pattern: $0) }
    }

    /// - Parameters:
    ///   - credentials: the worker's own secrets (its Git token), always redacted.
    ///   - secretValues: values of task `env` entries the policy marks secret.
    ///   - patterns: the policy's patterns, already checked to compile.
    public init(credentials: [String] = [], secretValues: [String] = [], patterns: [(kind: String, regex: String)] = []) {
        let policyRules = patterns.compactMap { entry in
            (try? Regex(entry.regex)).map { Rule(kind: entry.kind, literal: nil, pattern: $0) }
        }
        self.init(rules: Self.literalRules(credentials, kind: "worker_credential") + Self.literalRules(secretValues, kind: "secret_env")
                  + Self.wellKnownRules + policyRules)
    }

    private init(rules: [Rule]) { self.rules = rules }

    /// This redactor with one task's secret `env` values first: the worker's
    /// rules are built once, the task's added per task.
    public func adding(secretValues: [String]) -> OutputRedactor {
        secretValues.isEmpty ? self : OutputRedactor(rules: Self.literalRules(secretValues, kind: "secret_env") + rules)
    }

    /// Longest first, so a secret that contains another is replaced whole;
    /// values under 4 characters would scrub ordinary text.
    private static func literalRules(_ values: [String], kind: String) -> [Rule] {
        values.filter { $0.count >= 4 }.sorted { $0.count > $1.count }.map { Rule(kind: kind, literal: $0, pattern: nil) }
    }

    /// A policy pattern's problem, or nil when it compiles.
    public static func problem(with pattern: String) -> String? {
        do { _ = try Regex(pattern); return nil } catch { return "\(error)" }
    }

    /// `text` with every match replaced, and the number of matches by kind.
    public func redact(_ text: String) -> (text: String, counts: [String: Int]) {
        var result = text
        var counts: [String: Int] = [:]
        for rule in rules {
            if let literal = rule.literal {
                let parts = result.components(separatedBy: literal)
                guard parts.count > 1 else { continue }
                counts[rule.kind, default: 0] += parts.count - 1
                result = parts.joined(separator: "[REDACTED:\(rule.kind)]")
            } else if let pattern = rule.pattern {
                let matches = result.matches(of: pattern).count
                guard matches > 0 else { continue }
                counts[rule.kind, default: 0] += matches
                result = result.replacing(pattern, with: "[REDACTED:\(rule.kind)]")
            }
        }
        return (result, counts)
    }
}
