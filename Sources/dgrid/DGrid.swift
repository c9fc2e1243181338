import ArgumentParser
import Glibc

@main
struct DGrid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dgrid",
        abstract: "Run tasks from a Git repository, each in its own hardened sandbox.",
        version: "0.1.0",
        subcommands: [SandboxCommand.self, ImageCommand.self]
    )

    static func main() {
        StandardStreams.ensureOpen()
        if let options = SandboxRunFastPath.parse(Array(CommandLine.arguments.dropFirst())) {
            Glibc.exit(options.execute())
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch {
            // `sandbox run` promises 125 and one line for anything that stops the
            // sandbox from being set up, flags it could not parse included.
            let arguments = CommandLine.arguments.dropFirst().prefix(2)
            if Array(arguments) == ["sandbox", "run"], exitCode(for: error) != .success {
                let message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                SandboxRun.fail(UsageError(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message))
            }
            exit(withError: error)
        }
    }
}

enum StandardStreams {
    /// Descriptors 0-2 must exist before anything opens a pipe, or a pipe could
    /// land on "stdout" and the sandbox's stdio wiring would clobber it.
    static func ensureOpen() {
        for fd in Int32(0)...2 where fcntl(fd, F_GETFD) < 0 {
            _ = open("/dev/null", O_RDWR)
        }
    }
}
