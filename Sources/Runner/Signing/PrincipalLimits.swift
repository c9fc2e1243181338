import Sandbox
import TOMLKit
import Trust

/// What one principal may do (docs/ARCHITECTURE.md §9), a `[principals."NAME"]`
/// table of `policy.toml` or its `[principal_defaults]`. nil: no limit of that kind.
/// Per-task maxima refuse a task outright; rates and concurrency make it wait.
public struct PrincipalLimits: Equatable, Sendable {
    /// Image references (glob patterns) the principal's tasks may name; nil: any
    /// image the worker allows. A task naming no image is checked as the worker's default.
    public var images: [String]?
    public var maxCPUs: Double?
    public var maxMemoryBytes: UInt64?
    public var maxPids: Int?
    public var maxTimeoutSeconds: Int?
    /// Tasks started in any trailing hour (claims, counted from the ledger).
    public var maxTasksPerHour: Int?
    /// Tasks running at once, grid-wide.
    public var maxConcurrentTasks: Int?
    /// Tasks waiting in the queue; the newest past it are refused.
    public var maxQueuedTasks: Int?
    /// Distinct trusted signers a task of this principal needs.
    public var minSigners: Int?
    /// Destinations this principal's tasks may reach (`EgressRule` text); nil: none.
    public var egress: [EgressRule]?
    /// The DNS server its tasks may query; nil: no DNS.
    public var resolver: UInt32?

    public init() {}

    static let keys = ["images", "max_cpus", "max_memory", "max_pids", "max_timeout_seconds", "max_tasks_per_hour",
                       "max_concurrent_tasks", "max_queued_tasks", "min_signers", "egress", "resolver"]

    /// Whether a task must wait for counts from the ledger before it runs.
    var hasRateOrConcurrency: Bool { maxTasksPerHour != nil || maxConcurrentTasks != nil }

    /// The values of `table` over `inherited` (a principal's own table over the defaults).
    static func parse(_ table: TOMLTable, over inherited: PrincipalLimits, name: String, source: String) throws(TrustFileError) -> PrincipalLimits {
        var limits = inherited
        let fields = PolicyFields(table: table, name: name, source: source)
        for key in table.keys.sorted() {
            switch key {
            case "images": limits.images = try fields.strings(key)
            case "max_cpus": limits.maxCPUs = try fields.positiveNumber(key)
            case "max_memory": limits.maxMemoryBytes = try fields.memory(key)
            case "max_pids": limits.maxPids = try fields.count(key, in: 1...1_000_000)
            case "max_timeout_seconds": limits.maxTimeoutSeconds = try fields.count(key, in: 1...(366 * 86_400))
            case "max_tasks_per_hour": limits.maxTasksPerHour = try fields.count(key, in: 0...1_000_000)
            case "max_concurrent_tasks": limits.maxConcurrentTasks = try fields.count(key, in: 0...1_000_000)
            case "max_queued_tasks": limits.maxQueuedTasks = try fields.count(key, in: 0...10_000_000)
            case "min_signers": limits.minSigners = try fields.count(key, in: 1...16)
            case "egress": limits.egress = try fields.egressRules(key)
            case "resolver": limits.resolver = try fields.address(key)
            default: throw fields.unknown(key, known: keys)
            }
        }
        return limits
    }
}

/// Grid-wide limits, `[global]` in `policy.toml`.
public struct GlobalLimits: Equatable, Sendable {
    /// Tasks waiting in the queue, all principals together; the newest past it are refused.
    public var maxQueue: Int?
    /// Tasks `dgrid submit` adds per minute, all principals together.
    public var maxSubmissionsPerMinute: Int?
    /// Tasks running at once, grid-wide.
    public var maxConcurrent: Int?

    public init() {}

    static let keys = ["max_queue", "max_submissions_per_minute", "max_concurrent"]

    static func parse(_ table: TOMLTable, source: String) throws(TrustFileError) -> GlobalLimits {
        var limits = GlobalLimits()
        let fields = PolicyFields(table: table, name: "global", source: source)
        for key in table.keys.sorted() {
            switch key {
            case "max_queue": limits.maxQueue = try fields.count(key, in: 0...10_000_000)
            case "max_submissions_per_minute": limits.maxSubmissionsPerMinute = try fields.count(key, in: 0...10_000_000)
            case "max_concurrent": limits.maxConcurrent = try fields.count(key, in: 0...1_000_000)
            default: throw fields.unknown(key, known: keys)
            }
        }
        return limits
    }
}

/// Egress by image: `[[egress]]` with `image` (a glob), `allow` (`EgressRule`
/// text) and optionally `resolver`. A task gets its principal's destinations
/// and those of every rule its image matches.
public struct EgressImageRule: Equatable, Sendable {
    public var image: String
    public var allow: [EgressRule]
    public var resolver: UInt32?

    static func parse(_ table: TOMLTable, index: Int, source: String) throws(TrustFileError) -> EgressImageRule {
        let fields = PolicyFields(table: table, name: "egress[\(index)]", source: source)
        var rule = EgressImageRule(image: "", allow: [], resolver: nil)
        for key in table.keys.sorted() {
            switch key {
            case "image": rule.image = try fields.string(key)
            case "allow": rule.allow = try fields.egressRules(key)
            case "resolver": rule.resolver = try fields.address(key)
            default: throw fields.unknown(key, known: ["image", "allow", "resolver"])
            }
        }
        guard !rule.image.isEmpty else { throw fields.problem("image is required") }
        return rule
    }
}

/// More signers for some tasks: `[[signers]]` with `priority` and/or `image` (a
/// glob), and `min_signers`. A task needs the most any matching rule asks.
public struct SignerRule: Equatable, Sendable {
    public var priority: String?
    public var image: String?
    public var minSigners: Int

    static func parse(_ table: TOMLTable, index: Int, source: String) throws(TrustFileError) -> SignerRule {
        let fields = PolicyFields(table: table, name: "signers[\(index)]", source: source)
        var rule = SignerRule(priority: nil, image: nil, minSigners: 1)
        var sawCount = false
        for key in table.keys.sorted() {
            switch key {
            case "priority":
                let text = try fields.string(key)
                guard TaskPriority(rawValue: text) != nil else {
                    throw fields.problem("priority: expected one of \(TaskPriority.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                rule.priority = text
            case "image": rule.image = try fields.string(key)
            case "min_signers":
                rule.minSigners = try fields.count(key, in: 1...16)
                sawCount = true
            default: throw fields.unknown(key, known: ["priority", "image", "min_signers"])
            }
        }
        guard sawCount else { throw fields.problem("min_signers is required") }
        guard rule.priority != nil || rule.image != nil else { throw fields.problem("name a priority, an image, or both") }
        return rule
    }

    func applies(priority: TaskPriority, image: String) -> Bool {
        if let wanted = self.priority, wanted != priority.rawValue { return false }
        if let pattern = self.image, !GlobPattern.matches(pattern, image) { return false }
        return true
    }
}

/// Typed reads from one table of `policy.toml`, each error naming the file, table and key.
struct PolicyFields {
    let table: TOMLTable
    let name: String
    let source: String

    func problem(_ text: String) -> TrustFileError {
        TrustFileError(file: source, problem: .syntax("[\(UntrustedText.shown(name, limit: 80))] \(text)"))
    }

    func unknown(_ key: String, known: [String]) -> TrustFileError {
        problem("unknown key \(UntrustedText.quoted(key, limit: 40)) (known: \(known.joined(separator: ", ")))")
    }

    func string(_ key: String) throws(TrustFileError) -> String {
        guard let text = table[key]?.string, !text.isEmpty else { throw problem("\(key): expected a string") }
        return text
    }

    func strings(_ key: String) throws(TrustFileError) -> [String] {
        guard let array = table[key]?.array else { throw problem("\(key): expected an array of strings") }
        var strings: [String] = []
        for item in array {
            guard let text = item.string, !text.isEmpty else { throw problem("\(key): expected an array of strings") }
            strings.append(text)
        }
        return strings
    }

    func egressRules(_ key: String) throws(TrustFileError) -> [EgressRule] {
        var rules: [EgressRule] = []
        for text in try strings(key) {
            do { rules.append(try EgressRule(parsing: text)) } catch { throw problem("\(key): \(error)") }
        }
        return rules
    }

    func address(_ key: String) throws(TrustFileError) -> UInt32 {
        guard let address = EgressRule.ipv4(Substring(try string(key))) else {
            throw problem("\(key): expected an IPv4 address like \"10.0.0.53\"")
        }
        return address
    }

    func count(_ key: String, in range: ClosedRange<Int>) throws(TrustFileError) -> Int {
        guard let value = table[key]?.int, range.contains(value) else {
            throw problem("\(key): expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func positiveNumber(_ key: String) throws(TrustFileError) -> Double {
        let value = table[key]
        guard let number = value?.double ?? value?.int.map(Double.init), number.isFinite, number > 0 else {
            throw problem("\(key): expected a number above 0")
        }
        return number
    }

    func memory(_ key: String) throws(TrustFileError) -> UInt64 {
        let value = table[key]
        if let count = value?.int, count > 0 { return UInt64(count) }
        guard let text = value?.string, let bytes = TaskMemory.bytes(text), bytes > 0 else {
            throw problem("\(key): expected bytes or a size like \"2g\"")
        }
        return bytes
    }
}
