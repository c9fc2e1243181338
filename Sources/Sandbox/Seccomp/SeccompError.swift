import Glibc
import SandboxSupport

/// Why a seccomp profile could not be loaded or compiled. Each case says what
/// failed, on what, and the description says what to do about it.
public enum SeccompError: Error, Equatable, CustomStringConvertible {
    /// The profile file could not be opened or read.
    case unreadableProfile(path: String, errno: Int32)
    /// The file is not JSON, or not shaped like a profile. `path` is nil for in-memory data.
    case invalidJSON(path: String?, reason: String)
    /// `rule` names the entry, e.g. "syscalls[3] (socket) in /x/default.json".
    case unknownAction(name: String, rule: String)
    case unknownOperator(name: String, rule: String)
    case invalidRule(rule: String, reason: String)
    case unknownArchitecture(name: String)
    /// Only in strict mode; otherwise an unknown syscall is a warning.
    case unknownSyscall(name: String, rule: String)
    /// A libseccomp call failed; `subject` is what it was working on.
    case libseccomp(call: String, subject: String, errno: Int32)
    /// Reading the BPF back from libseccomp failed at `step`.
    case export(step: String, errno: Int32)
    /// The kernel refuses programs longer than BPF_MAXINSNS.
    case filterTooLarge(instructions: Int, limit: Int)

    public var description: String {
        switch self {
        case .unreadableProfile(let path, let errno):
            return "seccomp profile \(path): \(Self.text(errno)); check the path passed to --seccomp"
        case .invalidJSON(let path, let reason):
            return "seccomp profile \(path ?? "(in memory)") is not a valid OCI/Docker profile: \(reason)"
        case .unknownAction(let name, let rule):
            let known = SeccompAction.allCases.map(\.rawValue).joined(separator: ", ")
            return "seccomp profile \(rule): unknown action \"\(name)\"; use one of \(known)"
        case .unknownOperator(let name, let rule):
            let known = SeccompOperator.allCases.map(\.rawValue).joined(separator: ", ")
            return "seccomp profile \(rule): unknown operator \"\(name)\"; use one of \(known)"
        case .invalidRule(let rule, let reason):
            return "seccomp profile \(rule): \(reason)"
        case .unknownArchitecture(let name):
            return "seccomp profile: unknown architecture \"\(name)\"; use libseccomp names such as SCMP_ARCH_X86_64"
        case .unknownSyscall(let name, let rule):
            return "seccomp profile \(rule): libseccomp \(SeccompLibrary.version) does not know syscall \"\(name)\"; "
                + "remove it, or compile without strict mode to skip it with a warning"
        case .libseccomp(let call, let subject, let errno):
            return "seccomp: \(call) failed for \(subject): \(Self.text(errno))"
        case .export(let step, let errno):
            return "seccomp: exporting the compiled filter failed at \(step): \(Self.text(errno))"
        case .filterTooLarge(let instructions, let limit):
            return "seccomp: the compiled filter has \(instructions) instructions, more than the kernel's \(limit); "
                + "merge rules or drop argument conditions"
        }
    }

    /// Adds the file to a rule location: "syscalls[3] (socket) in /x/default.json".
    func located(in path: String?) -> SeccompError {
        guard let path else { return self }
        switch self {
        case .unknownAction(let name, let rule): return .unknownAction(name: name, rule: "\(rule) in \(path)")
        case .unknownOperator(let name, let rule): return .unknownOperator(name: name, rule: "\(rule) in \(path)")
        case .invalidRule(let rule, let reason): return .invalidRule(rule: "\(rule) in \(path)", reason: reason)
        case .unknownSyscall(let name, let rule): return .unknownSyscall(name: name, rule: "\(rule) in \(path)")
        default: return self
        }
    }

    private static func text(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
