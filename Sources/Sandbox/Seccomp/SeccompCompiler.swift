import CSeccomp
import Glibc
import SandboxSupport

/// Turns a profile into BPF with libseccomp, in the parent, so the child only has
/// to make one `seccomp()` call, as crun does.
public enum SeccompCompiler {
    /// The file `loadDefault(profilesDirectory:)` reads.
    public static let defaultProfileName = "default.json"

    /// Compiles `profile` for this machine. Rules for syscalls libseccomp does not
    /// know are skipped with a warning, or throw `.unknownSyscall` when `strict`.
    /// Not cached; use `load(path:)` to compile each profile once per process.
    public static func compile(_ profile: SeccompProfile, strict: Bool = false)
        throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) {
        try compile(profile, strict: strict, host: .current)
    }

    /// Reads, parses and compiles the profile at `path`, reusing the filter if a
    /// profile with the same bytes was compiled before in this process.
    public static func load(path: String, strict: Bool = false)
        throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) {
        let bytes = try SeccompProfile.readProfileFile(path: path)
        return try SeccompCache.shared.compiled(bytes: bytes, path: path, strict: strict)
    }

    /// `load(path:)` on `default.json` in `profilesDirectory`.
    public static func loadDefault(profilesDirectory: String, strict: Bool = false)
        throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) {
        var directory = profilesDirectory
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        return try load(path: directory + "/" + defaultProfileName, strict: strict)
    }

    static func compile(_ profile: SeccompProfile, strict: Bool, host: SeccompHost)
        throws(SeccompError) -> (filter: SeccompFilter, warnings: [String]) {
        let defaultAction = SeccompLibrary.value(of: profile.defaultAction, errnoRet: profile.defaultErrnoRet)
        guard let context = seccomp_init(defaultAction) else {
            throw .libseccomp(call: "seccomp_init", subject: "default action \(profile.defaultAction.rawValue)", errno: EINVAL)
        }
        defer { seccomp_release(context) }

        // Syscalls through another ABI (int 0x80, x32) would bypass a filter written
        // for x86_64 numbers; fail them with EPERM rather than kill, so the task
        // sees an ordinary error.
        try set(SCMP_FLTATR_ACT_BADARCH, SeccompLibrary.errnoAction(UInt32(EPERM)), on: context)
        // The shim sets no_new_privs itself; we only export, never seccomp_load.
        try set(SCMP_FLTATR_CTL_NNP, 0, on: context)
        try addArchitectures(profile.architectures, to: context)

        var warnings: [String] = []
        for (index, rule) in profile.syscalls.enumerated() where host.applies(rule) {
            let location = SeccompRule.location(index: index, names: rule.names)
            let action = SeccompLibrary.value(of: rule.action, errnoRet: rule.errnoRet)
            let conditions = rule.args.map(SeccompLibrary.comparison)
            for name in rule.names {
                let number = seccomp_syscall_resolve_name(name)
                guard number != __NR_SCMP_ERROR else {
                    if strict { throw .unknownSyscall(name: name, rule: location) }
                    warnings.append("seccomp profile \(location): libseccomp \(SeccompLibrary.version) does not know "
                        + "syscall \"\(name)\"; it gets the default action")
                    continue
                }
                // libseccomp refuses a rule that repeats the default action (EACCES),
                // and it would change nothing.
                if action == defaultAction { continue }
                // Several rules for one syscall are OR-ed; conditions within one are AND-ed.
                let rc = conditions.withUnsafeBufferPointer {
                    seccomp_rule_add_array(context, action, number, UInt32($0.count), $0.baseAddress)
                }
                guard rc == 0 else {
                    throw .libseccomp(call: "seccomp_rule_add_array", subject: "\"\(name)\" in \(location)", errno: -rc)
                }
            }
        }
        return (try SeccompExport.bpf(from: context), warnings)
    }

    private static func set(_ attribute: scmp_filter_attr, _ value: UInt32,
                            on context: scmp_filter_ctx) throws(SeccompError) {
        let rc = seccomp_attr_set(context, attribute, value)
        guard rc == 0 else {
            throw .libseccomp(call: "seccomp_attr_set", subject: "attribute \(attribute.rawValue)", errno: -rc)
        }
    }

    /// The native architecture is in every new context; others are added only when
    /// the profile lists them, so by default 32-bit entry points hit BADARCH.
    private static func addArchitectures(_ names: [String], to context: scmp_filter_ctx) throws(SeccompError) {
        for name in names {
            guard let token = SeccompLibrary.architectureToken(name) else { throw .unknownArchitecture(name: name) }
            if token == seccomp_arch_native() { continue }
            let rc = seccomp_arch_add(context, token)
            guard rc == 0 || rc == -EEXIST else {
                throw .libseccomp(call: "seccomp_arch_add", subject: name, errno: -rc)
            }
        }
    }
}

extension SeccompRule {
    /// "syscalls[3] (socket)": how errors and warnings name a rule.
    static func location(index: Int?, names: [String]) -> String {
        let shown = names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …" : "")
        return "syscalls[\(index.map(String.init) ?? "?")] (\(shown))"
    }
}
