import Sandbox

/// A registry store that failed a task's push or `/inputs`, as a host fault
/// (docs/ARCHITECTURE.md §7, §10): the task is given back and runs again, the
/// worker claims nothing until `artifact check` passes. What is published
/// names the registry and what it answered, never a host path (docs/THREATS.md,
/// T11): a failure of this host's own (the helper could not run, the registry
/// configuration file) is published as that, its whole text kept for the log.
enum RegistryStoreFault {
    static func hostFault(_ failure: RegistryHelper.Failure, registry: ArtifactRepository?) -> HostFault {
        let name = registry.map { "the artifact registry \($0)" } ?? "the artifact registry"
        return HostFault(published: published(failure, name: name), detail: "\(name): \(failure.message)", check: .artifactRegistry)
    }

    /// `failure` as everyone may read it.
    static func published(_ failure: RegistryHelper.Failure, name: String) -> String {
        let message = failure.message
        if failure.local || message.hasPrefix("registry configuration ") {
            return "\(name) could not be used: this worker's registry helper or configuration failed (its log has why)"
        }
        return "\(name) did not take the task's artifacts: \(message)"
    }
}
