import ArgumentParser
import Glibc
import Sandbox

/// The `dgrid` binary's command tree: the sandbox and the local image verbs,
/// and entries for the verbs that talk to registries and Git, which run in
/// `dgrid-registry` and `dgrid-grid` (see SiblingBinary, SiblingVerbs).
package struct DGrid: ParsableCommand {
    package static let version = "0.1.0"

    package static let configuration = CommandConfiguration(
        commandName: "dgrid",
        abstract: "Run tasks from a Git repository, each in its own hardened sandbox.",
        discussion: """
        The grid verbs run in dgrid-grid and `image pull` in dgrid-registry, both installed beside \
        dgrid, which hands those verbs over; `dgrid help VERB` and `dgrid VERB --help` show their options.
        """,
        version: version,
        subcommands: [SandboxCommand.self, ImageCommand.self],
        groupedSubcommands: [CommandGroup(name: "Grid", subcommands: GridVerbs.all)]
    )

    package init() {}

    /// `dgrid`'s entry point: `sandbox run` in its canonical spelling skips
    /// ArgumentParser (start latency), network verbs exec their binary, and
    /// ArgumentParser handles everything else.
    package static func runFront() -> Never {
        StandardStreams.ensureOpen()
        exitIfLayerHelper()
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let options = SandboxRunFastPath.parse(arguments) {
            Glibc.exit(options.execute())
        }
        if let binary = SiblingBinary.fileName(for: arguments) {
            SiblingBinary.exec(arguments, in: binary)
        }
        run(Self.self)
    }

    /// The rootless layer helper (LayerNamespaceHelper) when dgrid re-executed
    /// itself as one: first thing in `main`, while the process has one thread.
    package static func exitIfLayerHelper() {
        if let status = LayerNamespaceHelper.helperMain(CommandLine.arguments) {
            Glibc.exit(status)
        }
    }

    /// Parses and runs `root`'s tree; exits with the command's status.
    package static func run(_ root: ParsableCommand.Type) -> Never {
        do {
            var command = try root.parseAsRoot()
            try command.run()
            Glibc.exit(0)
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch {
            // `sandbox run` promises 125 and one line for anything that stops the
            // sandbox from being set up, flags it could not parse included.
            let arguments = CommandLine.arguments.dropFirst().prefix(2)
            if Array(arguments) == ["sandbox", "run"], root.exitCode(for: error) != .success {
                let message = root.fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                SandboxRun.fail(UsageError(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message))
            }
            root.exit(withError: error)
        }
    }
}

package enum StandardStreams {
    /// Descriptors 0-2 must exist before anything opens a pipe, or a pipe could
    /// land on "stdout" and the sandbox's stdio wiring would clobber it.
    package static func ensureOpen() {
        for fd in Int32(0)...2 where fcntl(fd, F_GETFD) < 0 {
            _ = open("/dev/null", O_RDWR)
        }
    }
}
