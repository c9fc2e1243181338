import DGridCLI
import Registry
import Sandbox

extension RegistryCLIOptions {
    /// The client options: the configuration file, and `DGRID_REGISTRY_TIMEOUT`
    /// (seconds) for the idle timeout and the base deadlines.
    func clientOptions(store: ImageStore) -> RegistryClient.Options {
        clientOptions(state: store.state)
    }

    /// The same for verbs that need no image store (`artifact`): the configuration
    /// is looked for under `state` ($DGRID_HOME/registry.json) as for pulls.
    func clientOptions(state: StateDirectory) -> RegistryClient.Options {
        let environment = ProcessEnvironment.current
        let configuration: RegistryConfiguration
        do {
            configuration = try RegistryConfiguration.load(explicitPath: registryConfig, environment: environment, state: state)
        } catch {
            ImageCLI.fail(error)
        }
        var options = RegistryClient.Options(insecure: insecure, configuration: configuration)
        if let text = environment["DGRID_REGISTRY_TIMEOUT"], let seconds = Int64(text), seconds > 0 {
            options.idleTimeout = seconds
            options.documentDeadline = seconds
            options.blobDeadline = seconds
        }
        return options
    }
}

