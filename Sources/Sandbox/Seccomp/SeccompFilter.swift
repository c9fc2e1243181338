import CShims
import SandboxSupport

/// A seccomp program compiled by libseccomp in the parent, ready for the child
/// to install with one `seccomp()` call. Compile once per profile and reuse.
public struct SeccompFilter: Sendable {
    /// Raw BPF instructions (`struct sock_filter`), native byte order.
    public let instructions: [sock_filter]

    public init(instructions: [sock_filter]) {
        self.instructions = instructions
    }
}
