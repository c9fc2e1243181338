import Sandbox
import TOMLKit
import Trust

/// The host's signing policy, `$DGRID_HOME/trust/policy.toml` (docs/ARCHITECTURE.md
/// §9), under the same owner and mode rules as the key files. Missing: the
/// defaults — every task signed, one signer. An unknown key or a wrong type is
/// an error naming it: a typo must not quietly widen what runs.
public struct TrustPolicy: Equatable, Sendable {
    public static let fileName = "policy.toml"

    /// Refuse tasks without a valid signature by a trusted key. Default true;
    /// a worker's `--allow-unsigned` is the explicit, logged opt-out.
    public var requireSignatures = true
    /// Distinct trusted principals a task needs.
    public var minSigners = 1
    /// Task `env` names whose values are secrets: scrubbed from the task's output.
    public var secretEnv: [String] = []
    /// Regular expressions scrubbed from every task's output (kind `policy`).
    public var redactPatterns: [String] = []

    public init(requireSignatures: Bool = true, minSigners: Int = 1) {
        self.requireSignatures = requireSignatures
        self.minSigners = minSigners
    }

    public static func parse(_ text: String, source: String) throws(TrustFileError) -> TrustPolicy {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw TrustFileError(file: source, line: error.source.begin.line, problem: .syntax(error.description))
        } catch {
            throw TrustFileError(file: source, problem: .syntax("\(error)"))
        }
        var policy = TrustPolicy()
        for key in table.keys.sorted() {
            guard let value = table[key] else { continue }
            switch key {
            case "require_signatures":
                guard let flag = value.bool else { throw TrustFileError(file: source, problem: .syntax("require_signatures: expected true or false")) }
                policy.requireSignatures = flag
            case "min_signers":
                guard let count = value.int, (1...16).contains(count) else {
                    throw TrustFileError(file: source, problem: .syntax("min_signers: expected a whole number from 1 to 16"))
                }
                policy.minSigners = count
            case "secret_env", "redact_patterns":
                guard let array = value.array else { throw TrustFileError(file: source, problem: .syntax("\(key): expected an array of strings")) }
                var strings: [String] = []
                for item in array {
                    guard let text = item.string, !text.isEmpty else { throw TrustFileError(file: source, problem: .syntax("\(key): expected an array of strings")) }
                    if key == "redact_patterns", let problem = OutputRedactor.problem(with: text) {
                        throw TrustFileError(file: source, problem: .syntax("redact_patterns: \(UntrustedText.quoted(text, limit: 60)) is not a regular expression: \(problem)"))
                    }
                    strings.append(text)
                }
                if key == "secret_env" { policy.secretEnv = strings } else { policy.redactPatterns = strings }
            default:
                throw TrustFileError(file: source, problem: .syntax("unknown key \(UntrustedText.quoted(key, limit: 40)) (known: require_signatures, min_signers, secret_env, redact_patterns)"))
            }
        }
        return policy
    }
}

/// Everything a worker trusts, read once from `$DGRID_HOME/trust/`.
public struct HostTrust: Sendable {
    public let store: TrustStore
    public let policy: TrustPolicy

    public init(store: TrustStore, policy: TrustPolicy = TrustPolicy()) {
        self.store = store
        self.policy = policy
    }

    public static func load(state: StateDirectory) throws(TrustFileError) -> HostTrust {
        let store = try TrustStore.load(state: state)
        guard let directory = store.directory,
              let text = try TrustStore.readText(directory + "/" + TrustPolicy.fileName) else {
            return HostTrust(store: store)
        }
        return HostTrust(store: store, policy: try TrustPolicy.parse(text, source: directory + "/" + TrustPolicy.fileName))
    }
}
