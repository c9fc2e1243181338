import ArgumentParser
import Glibc

@main
struct DGrid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dgrid",
        abstract: "Run tasks from a Git repository, each in its own hardened sandbox.",
        version: "0.1.0",
        subcommands: [SandboxCommand.self]
    )

    static func main() {
        StandardStreams.ensureOpen()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch {
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
