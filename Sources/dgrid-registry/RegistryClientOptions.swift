import DGridCLI
import Registry
import Sandbox

extension RegistryCLIOptions {
    /// The client options: the configuration file, and `DGRID_REGISTRY_TIMEOUT`
    /// (seconds) for the idle timeout and the base deadlines.
    func clientOptions(store: ImageStore) -> RegistryClient.Options {
        let environment = ProcessEnvironment.current
        let configuration: RegistryConfiguration
        do {
            configuration = try RegistryConfiguration.load(explicitPath: registryConfig, environment: environment, state: store.state)
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

