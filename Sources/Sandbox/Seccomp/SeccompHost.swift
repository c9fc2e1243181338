import Glibc
import SandboxSupport

/// What Docker's `includes`/`excludes` are evaluated against: this machine's
/// architecture and kernel, and the task's capabilities. A value, so tests can
/// ask "would this rule apply on arm64 / kernel 4.4?" without such a machine.
struct SeccompHost: Sendable, Equatable {
    /// Every spelling of the native architecture a profile might use: Docker
    /// writes Go names (`amd64`), others write uname or libseccomp names.
    var architectureNames: Set<String>
    /// nil when uname's release cannot be parsed; `minKernel` rules then skip.
    var kernel: KernelVersion?
    /// dgrid tasks run with no capabilities (docs/ARCHITECTURE.md §2), so rules that need one
    /// never apply.
    var capabilities: Set<String> = []

    static var current: SeccompHost {
        SeccompHost(architectureNames: nativeArchitectureNames, kernel: runningKernel())
    }

    #if arch(x86_64)
    static let nativeArchitectureNames: Set<String> = ["amd64", "x86_64", "SCMP_ARCH_X86_64"]
    #elseif arch(arm64)
    static let nativeArchitectureNames: Set<String> = ["arm64", "aarch64", "SCMP_ARCH_AARCH64"]
    #else
    static let nativeArchitectureNames: Set<String> = []
    #endif

    private static func runningKernel() -> KernelVersion? {
        var name = utsname()
        guard uname(&name) == 0 else { return nil }
        let release = withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return KernelVersion(release)
    }

    /// Docker's semantics: every `includes` condition must hold, and no
    /// `excludes` condition may.
    func applies(_ rule: SeccompRule) -> Bool {
        let includes = rule.includes
        if !includes.caps.isEmpty, !Set(includes.caps).isSubset(of: capabilities) { return false }
        if !includes.arches.isEmpty, architectureNames.isDisjoint(with: includes.arches) { return false }
        if let minimum = includes.minKernel {
            guard let kernel, kernel >= minimum else { return false }
        }

        let excludes = rule.excludes
        if !capabilities.isDisjoint(with: excludes.caps) { return false }
        if !architectureNames.isDisjoint(with: excludes.arches) { return false }
        if let minimum = excludes.minKernel, let kernel, kernel >= minimum { return false }
        return true
    }
}
