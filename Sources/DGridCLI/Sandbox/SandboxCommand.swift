import ArgumentParser

struct SandboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run one command in an isolated sandbox.",
        subcommands: [SandboxRun.self]
    )
}
