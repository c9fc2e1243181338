import CSeccomp
import Glibc
import SandboxSupport

/// Translations from the profile model to libseccomp's C values, kept apart so
/// the compiler reads as the sequence of calls it makes.
enum SeccompLibrary {
    /// "2.5.4": shown in messages about syscall names this libseccomp predates.
    static var version: String {
        guard let version = seccomp_version() else { return "(unknown version)" }
        return "\(version.pointee.major).\(version.pointee.minor).\(version.pointee.micro)"
    }

    /// `SCMP_ACT_ERRNO(x)` and `SCMP_ACT_TRACE(x)` are function-like macros that
    /// Swift cannot import; these are their definitions from seccomp.h.
    static func errnoAction(_ code: UInt32) -> UInt32 { 0x0005_0000 | (code & 0xFFFF) }
    static func traceAction(_ code: UInt32) -> UInt32 { 0x7FF0_0000 | (code & 0xFFFF) }

    static func value(of action: SeccompAction, errnoRet: UInt32?) -> UInt32 {
        // The OCI runtime-spec and runc default a missing errnoRet to EPERM.
        let code = errnoRet ?? UInt32(EPERM)
        switch action {
        case .kill, .killThread: return SCMP_ACT_KILL_THREAD
        case .killProcess: return SCMP_ACT_KILL_PROCESS
        case .trap: return SCMP_ACT_TRAP
        case .errno: return errnoAction(code)
        case .trace: return traceAction(code)
        case .allow: return SCMP_ACT_ALLOW
        case .log: return SCMP_ACT_LOG
        }
    }

    static func comparison(_ argument: SeccompArgument) -> scmp_arg_cmp {
        let op: scmp_compare
        switch argument.op {
        case .notEqual: op = SCMP_CMP_NE
        case .lessThan: op = SCMP_CMP_LT
        case .lessOrEqual: op = SCMP_CMP_LE
        case .equal: op = SCMP_CMP_EQ
        case .greaterOrEqual: op = SCMP_CMP_GE
        case .greaterThan: op = SCMP_CMP_GT
        case .maskedEqual: op = SCMP_CMP_MASKED_EQ
        }
        // libseccomp's MASKED_EQ is `(arg & datum_a) == datum_b`, and the profile
        // format puts the mask in `value` and the datum in `valueTwo`, so both map
        // straight across; other operators ignore datum_b.
        return scmp_arg_cmp(arg: argument.index, op: op, datum_a: argument.value, datum_b: argument.valueTwo)
    }

    /// "SCMP_ARCH_X86_64" → libseccomp's token, or nil if libseccomp has no such
    /// architecture. libseccomp resolves its own lowercase names ("x86_64").
    static func architectureToken(_ name: String) -> UInt32? {
        guard name.hasPrefix("SCMP_ARCH_") else { return nil }
        let token = seccomp_arch_resolve_name(name.dropFirst("SCMP_ARCH_".count).lowercased())
        return token == 0 ? nil : token
    }
}
