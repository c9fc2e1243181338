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
    /// `[principal_defaults]`: limits of every principal without a table of its
    /// own, and of unsigned tasks where they may run (one bucket, `QuotaBook.unsignedBucket`).
    public var principalDefaults = PrincipalLimits()
    /// `[principals."NAME"]`, each over the defaults. NAME is a principal as
    /// `allowed_signers` names it (the first of its list).
    public var principals: [String: PrincipalLimits] = [:]
    /// `[global]`.
    public var global = GlobalLimits()
    /// `[[signers]]`: more signers by priority or image.
    public var signerRules: [SignerRule] = []
    /// `[[egress]]`: destinations by image.
    public var egressRules: [EgressImageRule] = []
    /// `worker_trust`: which workers' results and heartbeats count (`WorkerTrust`); nil:
    /// `allowed_workers` when that file exists, else trust on first use. This host's
    /// own file only: a fleet policy never sets it (`overlay`).
    public var workerTrust: WorkerTrustMode?
    /// `[reputation]`: which nodes take which work (`ReputationPolicy`). This host's own file only.
    public var reputation = ReputationPolicy()

    /// What a task of `principal` on `image` may reach: its principal's
    /// destinations and every matching `[[egress]]` rule's; nil: nothing (no network).
    public func egressGrant(principal: String?, image: String) -> EgressGrant? {
        let limits = self.limits(for: principal)
        var rules = limits.egress ?? []
        var resolver = limits.resolver
        for rule in egressRules where GlobPattern.matches(rule.image, image) {
            rules += rule.allow.filter { !rules.contains($0) }
            resolver = resolver ?? rule.resolver
        }
        return rules.isEmpty && resolver == nil ? nil : EgressGrant(rules: rules, resolver: resolver)
    }

    /// The limits `principal` runs under; nil: an unsigned task.
    public func limits(for principal: String?) -> PrincipalLimits {
        principal.flatMap { principals[$0] } ?? principalDefaults
    }

    /// Distinct signers `task` needs, whoever signed it first: the most the
    /// file's `min_signers`, a matching `[[signers]]` rule or the principal's table asks.
    public func requiredSigners(priority: TaskPriority, image: String, principal: String?) -> Int {
        var need = minSigners
        for rule in signerRules where rule.applies(priority: priority, image: image) { need = max(need, rule.minSigners) }
        if let own = limits(for: principal).minSigners { need = max(need, own) }
        return need
    }

    /// Whether any limit needs counts from the ledger before a task is claimed.
    public var hasLedgerQuotas: Bool {
        global.maxConcurrent != nil || principalDefaults.hasRateOrConcurrency || principals.values.contains { $0.hasRateOrConcurrency }
            || global.maxQueue != nil || principalDefaults.maxQueuedTasks != nil || principals.values.contains { $0.maxQueuedTasks != nil }
    }

    public init(requireSignatures: Bool = true, minSigners: Int = 1) {
        self.requireSignatures = requireSignatures
        self.minSigners = minSigners
    }

    static let knownKeys = ["require_signatures", "min_signers", "secret_env", "redact_patterns", "principal_defaults",
                            "principals", "global", "signers", "egress", "worker_trust", "reputation"]

    public static func parse(_ text: String, source: String) throws(TrustFileError) -> TrustPolicy {
        try parse(table: try table(text, source: source), source: source)
    }

    /// The TOML document `text`, or the error naming its line.
    static func table(_ text: String, source: String) throws(TrustFileError) -> TOMLTable {
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw TrustFileError(file: source, line: error.source.begin.line, problem: .syntax(error.description))
        } catch {
            throw TrustFileError(file: source, problem: .syntax("\(error)"))
        }
    }

    /// `host` over `fleet`: every value the host's file sets wins; within
    /// `[principal_defaults]`, `[global]` and each `[principals."NAME"]`, key by
    /// key; `[[signers]]` as a whole. What the host leaves unset, the fleet's file says.
    static func overlay(_ host: TOMLTable, onto fleet: TOMLTable) -> TOMLTable {
        let merged = TOMLTable()
        func mergeTables(_ top: TOMLTable?, _ bottom: TOMLTable?) -> TOMLTable {
            let table = TOMLTable()
            for key in bottom?.keys ?? [] { table[key] = bottom?[key] }
            for key in top?.keys ?? [] { table[key] = top?[key] }
            return table
        }
        for key in Set(fleet.keys).union(host.keys).sorted() {
            switch key {
            case "principal_defaults", "global":
                merged[key] = mergeTables(host[key]?.table, fleet[key]?.table)
            case "principals":
                let principals = TOMLTable()
                let hostTable = host[key]?.table, fleetTable = fleet[key]?.table
                for name in Set(hostTable?.keys ?? []).union(fleetTable?.keys ?? []).sorted() {
                    principals[name] = mergeTables(hostTable?[name]?.table, fleetTable?[name]?.table)
                }
                merged[key] = principals
            case "worker_trust", "reputation":
                // Which workers count, and for what, is the host's own decision, whoever signed the fleet's file.
                merged[key] = host[key]
            default:
                merged[key] = host[key] ?? fleet[key]
            }
        }
        return merged
    }

    static func parse(table: TOMLTable, source: String) throws(TrustFileError) -> TrustPolicy {
        var policy = TrustPolicy()
        // Defaults first: each principal's table is read over them.
        if let defaults = table["principal_defaults"] {
            guard let inner = defaults.table else { throw TrustFileError(file: source, problem: .syntax("principal_defaults: expected a table")) }
            policy.principalDefaults = try PrincipalLimits.parse(inner, over: PrincipalLimits(), name: "principal_defaults", source: source)
        }
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
            case "principal_defaults":
                break
            case "principals":
                guard let principals = value.table else { throw TrustFileError(file: source, problem: .syntax("principals: expected tables [principals.\"NAME\"]")) }
                for name in principals.keys.sorted() {
                    guard let inner = principals[name]?.table else {
                        throw TrustFileError(file: source, problem: .syntax("principals.\(UntrustedText.quoted(name, limit: 60)): expected a table"))
                    }
                    policy.principals[name] = try PrincipalLimits.parse(inner, over: policy.principalDefaults,
                                                                        name: "principals.\(name)", source: source)
                }
            case "global":
                guard let inner = value.table else { throw TrustFileError(file: source, problem: .syntax("global: expected a table")) }
                policy.global = try GlobalLimits.parse(inner, source: source)
            case "egress":
                guard let array = value.array else { throw TrustFileError(file: source, problem: .syntax("egress: expected [[egress]] tables")) }
                for (index, item) in array.enumerated() {
                    guard let inner = item.table else { throw TrustFileError(file: source, problem: .syntax("egress: expected [[egress]] tables")) }
                    policy.egressRules.append(try EgressImageRule.parse(inner, index: index, source: source))
                }
            case "worker_trust":
                guard let word = value.string, let mode = WorkerTrustMode(rawValue: word) else {
                    throw TrustFileError(file: source, problem: .syntax("worker_trust: expected one of \(WorkerTrustMode.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))"))
                }
                policy.workerTrust = mode
            case "reputation":
                guard let inner = value.table else { throw TrustFileError(file: source, problem: .syntax("reputation: expected a table [reputation]")) }
                policy.reputation = try ReputationPolicy.parse(inner, source: source)
            case "signers":
                guard let array = value.array else { throw TrustFileError(file: source, problem: .syntax("signers: expected [[signers]] tables")) }
                for (index, item) in array.enumerated() {
                    guard let inner = item.table else { throw TrustFileError(file: source, problem: .syntax("signers: expected [[signers]] tables")) }
                    policy.signerRules.append(try SignerRule.parse(inner, index: index, source: source))
                }
            default:
                throw TrustFileError(file: source, problem: .syntax("unknown key \(UntrustedText.quoted(key, limit: 40)) (known: \(knownKeys.joined(separator: ", ")))"))
            }
        }
        return policy
    }
}

/// Everything a worker trusts, read once from `$DGRID_HOME/trust/`.
public struct HostTrust: Sendable {
    public let store: TrustStore
    public let policy: TrustPolicy
    /// `trust/openpgp.gpg`; nil: OpenPGP signatures are not trusted here.
    public let openPGPKeyring: OpenPGPKeyring?
    /// The host's `policy.toml` as written, for laying it over a fleet policy (`FleetPolicy`).
    public let policyText: String?

    public init(store: TrustStore, policy: TrustPolicy = TrustPolicy(), openPGPKeyring: OpenPGPKeyring? = nil, policyText: String? = nil) {
        self.store = store
        self.policy = policy
        self.openPGPKeyring = openPGPKeyring
        self.policyText = policyText
    }

    /// The same trust under another policy.
    public func with(policy: TrustPolicy) -> HostTrust {
        HostTrust(store: store, policy: policy, openPGPKeyring: openPGPKeyring, policyText: policyText)
    }

    public static func load(state: StateDirectory) throws(TrustFileError) -> HostTrust {
        let store = try TrustStore.load(state: state)
        guard let directory = store.directory else { return HostTrust(store: store) }
        let policyPath = directory + "/" + TrustPolicy.fileName, keyringPath = directory + "/" + OpenPGPKeyring.fileName
        let text = try TrustStore.readText(policyPath)
        let policy = try text.map { (text) throws(TrustFileError) in try TrustPolicy.parse(text, source: policyPath) }
        let keyring = try TrustStore.readBytes(keyringPath).map { OpenPGPKeyring(bytes: $0, path: keyringPath) }
        return HostTrust(store: store, policy: policy ?? TrustPolicy(), openPGPKeyring: keyring, policyText: text)
    }
}
