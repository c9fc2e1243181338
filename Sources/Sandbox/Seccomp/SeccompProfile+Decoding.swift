#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
import SandboxSupport
#endif

// Decoding turns names into enums as it goes and throws `SeccompError` naming the
// rule, so a bad action or operator is reported as "syscalls[3] (socket)" rather
// than as a generic JSON error; `SeccompProfile.parse` adds the file path. Unknown keys (Docker's `archMap`, OCI's `flags`
// and `listenerPath`) are ignored: the shim installs the filter itself.

extension SeccompProfile: Decodable {
    private enum Keys: String, CodingKey {
        case defaultAction, defaultErrnoRet, architectures, syscalls
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let location = "defaultAction"
        let actionName = try container.decode(String.self, forKey: .defaultAction)
        guard let action = SeccompAction(rawValue: actionName) else {
            throw SeccompError.unknownAction(name: actionName, rule: location)
        }
        let errnoRet = try container.decodeIfPresent(UInt32.self, forKey: .defaultErrnoRet)
        try Self.validate(errnoRet: errnoRet, for: action, at: location)
        self.init(
            defaultAction: action,
            defaultErrnoRet: errnoRet,
            architectures: try container.decodeIfPresent([String].self, forKey: .architectures) ?? [],
            syscalls: try container.decodeIfPresent([SeccompRule].self, forKey: .syscalls) ?? [])
    }

    static func validate(errnoRet: UInt32?, for action: SeccompAction, at location: String) throws {
        guard let errnoRet else { return }
        guard action.takesErrno else {
            throw SeccompError.invalidRule(
                rule: location, reason: "errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not \(action.rawValue)")
        }
        // Larger values would not read as an error: libc treats -4096..-1 as errno.
        guard errnoRet <= 4095 else {
            throw SeccompError.invalidRule(rule: location, reason: "errnoRet \(errnoRet) is not an errno (1...4095)")
        }
    }
}

extension SeccompRule: Decodable {
    private enum Keys: String, CodingKey {
        case names, name, action, errnoRet, args, comment, includes, excludes
    }

    private struct RawArgument: Decodable {
        var index: UInt32
        var value: UInt64
        var valueTwo: UInt64?
        var op: String
    }

    private struct RawFilter: Decodable {
        var arches: [String]?
        var caps: [String]?
        var minKernel: String?
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        // Very old Docker profiles use a single `name`; accept both.
        var names = try container.decodeIfPresent([String].self, forKey: .names) ?? []
        if let name = try container.decodeIfPresent(String.self, forKey: .name) {
            names.append(name)
        }
        let index = decoder.codingPath.last?.intValue
        let location = SeccompRule.location(index: index, names: names)
        guard !names.isEmpty else {
            throw SeccompError.invalidRule(rule: location, reason: "no syscall names")
        }

        let actionName = try container.decode(String.self, forKey: .action)
        guard let action = SeccompAction(rawValue: actionName) else {
            throw SeccompError.unknownAction(name: actionName, rule: location)
        }
        let errnoRet = try container.decodeIfPresent(UInt32.self, forKey: .errnoRet)
        try SeccompProfile.validate(errnoRet: errnoRet, for: action, at: location)

        var args: [SeccompArgument] = []
        for raw in try container.decodeIfPresent([RawArgument].self, forKey: .args) ?? [] {
            guard let op = SeccompOperator(rawValue: raw.op) else {
                throw SeccompError.unknownOperator(name: raw.op, rule: location)
            }
            guard raw.index < 6 else {
                throw SeccompError.invalidRule(rule: location, reason: "argument index \(raw.index) is out of range (0...5)")
            }
            args.append(SeccompArgument(index: raw.index, value: raw.value, valueTwo: raw.valueTwo ?? 0, op: op))
        }

        func filter(_ key: Keys) throws -> SeccompRuleFilter {
            guard let raw = try container.decodeIfPresent(RawFilter.self, forKey: key) else { return .init() }
            var minKernel: KernelVersion?
            if let text = raw.minKernel {
                guard let version = KernelVersion(text) else {
                    throw SeccompError.invalidRule(
                        rule: location, reason: "\(key.rawValue).minKernel \"\(text)\" is not a version like \"4.8\"")
                }
                minKernel = version
            }
            return SeccompRuleFilter(arches: raw.arches ?? [], caps: raw.caps ?? [], minKernel: minKernel)
        }

        self.init(names: names, action: action, errnoRet: errnoRet, args: args,
                  comment: try container.decodeIfPresent(String.self, forKey: .comment),
                  includes: try filter(.includes), excludes: try filter(.excludes))
    }
}
