import Sandbox

/// Turns `--seccomp` into a compiled filter: the embedded default profile, a
/// profile file (OCI/Docker format), or none for `unconfined`.
enum SeccompChoice {
    static func filter(for option: String?) throws -> SeccompFilter? {
        switch option {
        case nil:
            return try DefaultSeccomp.filter()
        case "unconfined":
            return nil
        case let path?:
            let (filter, warnings) = try DefaultSeccomp.filter(profilePath: path)
            for warning in warnings {
                FileDescriptorWriter.write(Array("dgrid: seccomp profile \(UntrustedText.lineSafe("\(path): \(warning)"))\n".utf8), to: 2)
            }
            return filter
        }
    }
}
