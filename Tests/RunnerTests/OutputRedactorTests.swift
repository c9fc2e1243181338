import Testing
import TestSupport
@testable import Runner

/// Secrets a task's output may carry are scrubbed before its result is
/// published (docs/ARCHITECTURE.md §9); each kind is counted, no value kept.
@Suite(.unit)
struct OutputRedactorTests {
    static let ghToken = "ghp_" + String(repeating: "a1B2", count: 9)
    static let cases: [(name: String, text: String, kind: String)] = [
        ("aws access key", "key=AKIAIOSFODNN7EXAMPLE done", "aws_access_key"),
        ("github token", "token \(ghToken)\n", "github_token"),
        ("github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", "github_token"),
        ("gitlab token", "glpat-abcdefghij0123456789", "gitlab_token"),
        ("slack token", "xoxb-1234567890-abcdefghij", "slack_token"),
        ("jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl", "jwt"),
        ("pem key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "pem_private_key"),
        ("the worker's token", "leaked: s3cr3t-w0rker-t0ken!", "worker_credential"),
        ("a secret env value", "db password is hunter2hunter2", "secret_env"),
        ("a policy pattern", "ticket INTERNAL-12345 closed", "policy"),
    ]

    static let redactor = OutputRedactor(credentials: ["s3cr3t-w0rker-t0ken"], secretValues: ["hunter2hunter2"],
                                         patterns: [("policy", #"INTERNAL-[0-9]+"#)])

    @Test(arguments: cases.map(\.name))
    func eachKindIsScrubbedAndCounted(_ name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let (text, counts) = Self.redactor.redact(c.text)
        #expect(counts == [c.kind: 1], "\(name): \(counts)")
        #expect(text.contains("[REDACTED:\(c.kind)]"), "\(text)")
        #expect(!text.contains("EXAMPLE") && !text.contains("a1B2a1B2") && !text.contains("hunter2") && !text.contains("s3cr3t")
                && !text.contains("b3BlbnNz") && !text.contains("12345") && !text.contains("eyJzdWIi"), "\(name): \(text)")
    }

    @Test func ordinaryOutputIsLeftAlone() {
        let text = "AKIA short, ghp_short, eyJ alone, 42 primes, -----BEGIN PUBLIC KEY-----\n"
        let (out, counts) = Self.redactor.redact(text)
        #expect(out == text && counts.isEmpty)
    }

    @Test func repeatsAreCountedAndShortValuesIgnored() {
        let (out, counts) = OutputRedactor(secretValues: ["abc", "longsecret"]).redact("longsecret abc longsecret")
        #expect(out == "[REDACTED:secret_env] abc [REDACTED:secret_env]" && counts == ["secret_env": 2], "values under 4 characters would scrub ordinary text")
    }

    @Test func badPolicyPatternsAreRefusedAtLoad() throws {
        #expect(OutputRedactor.problem(with: "INTERNAL-[0-9") != nil)
        #expect(OutputRedactor.problem(with: "INTERNAL-[0-9]+") == nil)
        #expect(throws: Error.self) { _ = try TrustPolicy.parse("redact_patterns = [\"(\"]\n", source: "p") }
        #expect(try TrustPolicy.parse("secret_env = [\"DB_PASSWORD\"]\nredact_patterns = [\"x+\"]\n", source: "p").secretEnv == ["DB_PASSWORD"])
    }
}
