import ArgumentParser
import DGridCLI
import Foundation
import Runner

/// `worker`'s config flags: which file, per-key overrides, and
/// `--print-config`. Resolution itself is `WorkerConfigResolver` (Runner),
/// so its rules are unit-tested; this only gathers the inputs.
struct WorkerConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Worker config file (TOML); default $DGRID_CONFIG, else $DGRID_HOME/worker.toml, else /etc/dgrid/worker.toml when present. Keys: docs/worker.toml.example.", valueName: "PATH"))
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Set any config key from the command line, e.g. --set max_memory=2g (repeatable; wins over environment and file).", valueName: "KEY=VALUE"))
    var assignments: [String] = []

    @Flag(name: .long, help: "Print the effective settings and where each came from (flag, env, file, default), then exit.")
    var printConfig = false

    @Flag(name: .long, help: "With --print-config: print JSON.")
    var json = false

    func validate() throws {
        if json && !printConfig { throw ValidationError("--json only applies to --print-config") }
    }

    /// sysexits' EX_CONFIG: a supervisor can tell "fix the config" from a crash
    /// (systemd: RestartPreventExitStatus=78).
    static let configErrorExitCode: Int32 = 78

    /// The effective settings, or the process ends with the error naming the
    /// key and where the bad value came from. `flags` are the dedicated flags
    /// (`--slots`, `--lease`, …) the user gave.
    func resolve(flags: [WorkerConfigResolver.Flag], environment: [String: String]) -> (WorkerConfig, WorkerConfigFile?) {
        do {
            return try Self.resolve(config: config, assignments: assignments, flags: flags, environment: environment)
        } catch {
            FileHandle.standardError.write(Data("dgrid: \(error)\n".utf8))
            Foundation.exit(Self.configErrorExitCode)
        }
    }

    /// The effective settings from a config file flag, `--set` assignments and
    /// dedicated flags, as `dgrid worker` resolves them (`dgrid doctor` reports a failure instead of exiting).
    static func resolve(config: String?, assignments: [String], flags: [WorkerConfigResolver.Flag],
                        environment: [String: String]) throws(WorkerConfigError) -> (WorkerConfig, WorkerConfigFile?) {
        var given = flags
        for assignment in assignments { given.append(try WorkerConfigResolver.Flag(assignment: assignment)) }
        let file = try WorkerConfigLocation.load(flag: config, environment: environment)
        let host = WorkerConfigResolver.Host(cores: ProcessInfo.processInfo.activeProcessorCount,
                                             memoryBytes: ProcessInfo.processInfo.physicalMemory,
                                             defaultNodeID: GridOptions.defaultNodeID())
        return (try WorkerConfigResolver.resolve(flags: given, environment: environment, file: file, host: host), file)
    }

    /// `--print-config`: the report on stdout.
    func print(_ config: WorkerConfig, file: WorkerConfigFile?) {
        let text = json ? WorkerConfigReport.json(config, file: file?.path) : WorkerConfigReport.text(config, file: file?.path)
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
