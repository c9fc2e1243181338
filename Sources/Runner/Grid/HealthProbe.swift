import Foundation
import Sandbox

/// Runs an unhealthy worker's self-check (docs/ARCHITECTURE.md §7, "Health"):
/// the image a host fault named resolves again, a trivial sandbox of the
/// default image starts, the seccomp filter compiles, or the periodic checks
/// pass (`WorkerSelfCheck`).
struct HealthProbe {
    let settings: GridSettings
    let runner: SandboxRunner

    /// Why the check still fails: published (no host path) and for the log.
    struct Failure: Equatable {
        let published: String
        let detail: String
    }

    /// nil when `check` passes. `seccomp` is prepared again by the seccomp check.
    func run(_ check: HealthCheck, store: ImageStore?, seccomp: inout Result<SeccompFilter, SeccompError>) -> Failure? {
        switch check {
        case .image(let reference):
            return imageProblem(reference, store: store)
        case .seccomp:
            let state = settings.state
            seccomp = Result { () throws(SeccompError) in try DefaultSeccomp.filter(state: state) }
            if case .failure(let error) = seccomp {
                let report = SetupFailureReport(seccomp: error)
                return Failure(published: report.published, detail: report.detail)
            }
            return nil
        case .periodic:
            return WorkerSelfCheck(settings: settings, runner: runner).run(store: store).map {
                Failure(published: $0.published, detail: $0.detail)
            }
        case .artifactRegistry:
            guard let registry = settings.artifactRegistry else { return nil }
            guard let failure = RegistryHelper(settings: settings).check(registry) else { return nil }
            let fault = RegistryStoreFault.hostFault(failure, registry: registry)
            return Failure(published: fault.published, detail: fault.detail)
        case .sandbox:
            if let problem = imageProblem(settings.defaultImage, store: store) { return problem }
            guard let store, case .success(let filter) = seccomp,
                  let resolved = try? ImageResolver(store: store).resolve(reference: settings.defaultImage) else {
                return Failure(published: "sandbox self-check: the default image or seccomp filter is not usable",
                               detail: "sandbox self-check: cannot prepare the default image or the seccomp filter")
            }
            defer { resolved.lease.release() }
            var spec = SandboxSpec(root: .layers(resolved.layers), command: ["/bin/sh", "-c", "exit 0"])
            spec.seccomp = filter
            spec.timeoutSeconds = 30
            spec.outputLimit = 1024
            spec.limits.memoryBytes = 64 << 20
            spec.limits.pids = 32
            do {
                _ = try runner.run(spec)
                return nil
            } catch {
                // The sandbox was set up and only the command was missing: the host is fine.
                if FaultOwner.of(error) == .task { return nil }
                let report = SetupFailureReport(error)
                return Failure(published: report.published, detail: report.detail)
            }
        }
    }

    private func imageProblem(_ reference: String, store: ImageStore?) -> Failure? {
        guard let problem = DefaultImageCheck(store: store, reference: reference).problem() else { return nil }
        let role = reference == settings.defaultImage ? "default " : ""
        return Failure(published: role + problem.published, detail: role + problem.published + " (" + problem.detail + ")")
    }
}
