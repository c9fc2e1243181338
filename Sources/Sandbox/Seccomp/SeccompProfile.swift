import SandboxSupport
/// A seccomp profile in the OCI runtime-spec `linux.seccomp` format, which is also
/// Docker's profile format, so users can drop in a profile they already have
/// (docs/ARCHITECTURE.md §4). Decoding validates every name, so a profile that decodes can
/// always be compiled; see `SeccompProfile+Parsing.swift` for the entry points.
public struct SeccompProfile: Sendable, Hashable {
    /// What happens to a syscall no rule matches.
    public var defaultAction: SeccompAction
    /// The errno for `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` defaults; nil means EPERM.
    public var defaultErrnoRet: UInt32?
    /// libseccomp architecture names (`SCMP_ARCH_X86_64`). The native one is always
    /// present; listing others opts their syscall entry points in.
    public var architectures: [String]
    public var syscalls: [SeccompRule]

    public init(defaultAction: SeccompAction, defaultErrnoRet: UInt32? = nil,
                architectures: [String] = [], syscalls: [SeccompRule] = []) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.architectures = architectures
        self.syscalls = syscalls
    }
}

/// One entry of `syscalls`: every name gets the same action and conditions.
public struct SeccompRule: Sendable, Hashable {
    public var names: [String]
    public var action: SeccompAction
    /// The errno returned by `SCMP_ACT_ERRNO` (or the `SCMP_ACT_TRACE` message);
    /// nil means EPERM.
    public var errnoRet: UInt32?
    /// Argument comparisons, all of which must hold (AND).
    public var args: [SeccompArgument]
    public var comment: String?
    /// Docker's filters: the rule applies only where `includes` holds and
    /// `excludes` does not (see `SeccompHost`).
    public var includes: SeccompRuleFilter
    public var excludes: SeccompRuleFilter

    public init(names: [String], action: SeccompAction, errnoRet: UInt32? = nil,
                args: [SeccompArgument] = [], comment: String? = nil,
                includes: SeccompRuleFilter = .init(), excludes: SeccompRuleFilter = .init()) {
        self.names = names
        self.action = action
        self.errnoRet = errnoRet
        self.args = args
        self.comment = comment
        self.includes = includes
        self.excludes = excludes
    }
}

/// A comparison on one syscall argument. For `maskedEqual`, `value` is the mask and
/// `valueTwo` the datum (`(arg & value) == valueTwo`), as in Docker and libseccomp.
public struct SeccompArgument: Sendable, Hashable {
    public var index: UInt32
    public var value: UInt64
    public var valueTwo: UInt64
    public var op: SeccompOperator

    public init(index: UInt32, value: UInt64, valueTwo: UInt64 = 0, op: SeccompOperator) {
        self.index = index
        self.value = value
        self.valueTwo = valueTwo
        self.op = op
    }
}

/// Docker's `includes`/`excludes`: Go architecture names (`amd64`), capability
/// names, and a minimum kernel version.
public struct SeccompRuleFilter: Sendable, Hashable {
    public var arches: [String]
    public var caps: [String]
    public var minKernel: KernelVersion?

    public init(arches: [String] = [], caps: [String] = [], minKernel: KernelVersion? = nil) {
        self.arches = arches
        self.caps = caps
        self.minKernel = minKernel
    }
}

public enum SeccompAction: String, Sendable, Hashable, CaseIterable {
    case kill = "SCMP_ACT_KILL"
    case killProcess = "SCMP_ACT_KILL_PROCESS"
    case killThread = "SCMP_ACT_KILL_THREAD"
    case trap = "SCMP_ACT_TRAP"
    case errno = "SCMP_ACT_ERRNO"
    case trace = "SCMP_ACT_TRACE"
    case allow = "SCMP_ACT_ALLOW"
    case log = "SCMP_ACT_LOG"

    /// Only these actions carry a return code; `errnoRet` elsewhere is a mistake.
    var takesErrno: Bool { self == .errno || self == .trace }
}

public enum SeccompOperator: String, Sendable, Hashable, CaseIterable {
    case notEqual = "SCMP_CMP_NE"
    case lessThan = "SCMP_CMP_LT"
    case lessOrEqual = "SCMP_CMP_LE"
    case equal = "SCMP_CMP_EQ"
    case greaterOrEqual = "SCMP_CMP_GE"
    case greaterThan = "SCMP_CMP_GT"
    case maskedEqual = "SCMP_CMP_MASKED_EQ"
}

/// A kernel release as `major.minor[.patch]`; parsed once, compared numerically.
public struct KernelVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int

    public init(major: Int, minor: Int, patch: Int = 0) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Accepts "4.8", "5.10.2" and uname releases such as "6.18.44-fc-v782"
    /// (everything after the numeric prefix is ignored).
    public init?(_ text: String) {
        let numeric = text.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let parts = numeric.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count >= 2, parts.count <= 3, let major = parts[0], let minor = parts[1] else {
            return nil
        }
        var patch = 0
        if parts.count == 3 {
            guard let value = parts[2] else { return nil }
            patch = value
        }
        self.init(major: major, minor: minor, patch: patch)
    }

    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (lhs: KernelVersion, rhs: KernelVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }
}
