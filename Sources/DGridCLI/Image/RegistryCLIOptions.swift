import ArgumentParser

/// `--insecure` and `--registry-config`, shared by `pull` and `allow`.
package struct RegistryCLIOptions: ParsableArguments {
    @Flag(name: .long, help: "Allow plain HTTP to the registry (TLS is otherwise required and verified).")
    package var insecure = false

    @Option(name: .long, help: ArgumentHelp(
        "Docker-style config.json with registry credentials (auths) and insecure-registries.", valueName: "FILE"))
    package var registryConfig: String?

    package init() {}
}
