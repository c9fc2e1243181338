import ArgumentParser
import Glibc
import Sandbox

struct SandboxRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run CMD in a sandbox and exit with its status.",
        discussion: """
        Exit status: the command's own; 124 on timeout; 128+N when killed by signal N; \
        125 when the sandbox could not be set up (the reason is printed on stderr).
        """
    )

    @Option(name: .long, help: ArgumentHelp("Root filesystem directory.", valueName: "DIR"))
    var rootfs: String?

    @Option(name: .long, help: ArgumentHelp("Allowlisted image name or digest (see `dgrid image allow`).", valueName: "NAME|DIGEST"))
    var image: String?

    @Option(name: .long, help: "Memory limit, e.g. 256m (swap off; the whole tree is OOM-killed).")
    var memory: String?

    @Option(name: .long, help: "CPU quota in CPUs, e.g. 1.5.")
    var cpus: String?

    @Option(name: .long, help: "Maximum number of processes and threads.")
    var pids: String?

    @Option(name: .long, help: "Wall-clock limit in seconds; the whole tree is killed after it.")
    var timeout: String?

    @Option(name: .long, help: ArgumentHelp("Numeric user, default 1000:1000.", valueName: "UID:GID"))
    var user: String?

    @Option(name: .long, help: ArgumentHelp("Environment variable (repeatable).", valueName: "K=V"))
    var env: [String] = []

    @Option(name: .long, help: ArgumentHelp("Working directory inside the sandbox (default: the image's, or /).", valueName: "DIR"))
    var workdir: String?

    @Flag(name: .long, help: "Make the root filesystem writable (it is read-only by default).")
    var writableRootfs = false

    @Option(name: .long, help: ArgumentHelp("Seccomp profile (OCI/Docker JSON), or 'unconfined'.", valueName: "FILE"))
    var seccomp: String?

    @Option(name: .long, help: ArgumentHelp("Bytes of stdout and of stderr kept (default 10k).", valueName: "BYTES"))
    var outputLimit: String?

    @Option(name: .long, help: "Size of the /tmp tmpfs (default 64m).")
    var tmpSize: String?

    @Option(name: .long, help: "The most an image run's --writable-rootfs holds, in memory (default 1g).")
    var writableSize: String?

    @Option(name: .long, help: "Hostname inside the sandbox.")
    var hostname: String = "dgrid"

    @Flag(name: .long, help: "Run even where no cgroup can be created; limits are then reported as not enforced.")
    var noCgroupLimits = false

    @Flag(name: .long, help: "Print the outcome as JSON instead of passing the output through.")
    var json = false

    @Argument(parsing: .remaining, help: ArgumentHelp("Command and arguments.", valueName: "CMD"))
    var command: [String] = []

    /// The parsed flags as plain values: what the start path below consumes,
    /// whichever parser produced them (see SandboxRunFastPath).
    var options: SandboxRunOptions {
        SandboxRunOptions(rootfs: rootfs, image: image, memory: memory, cpus: cpus, pids: pids,
                          timeout: timeout, user: user, env: env, workdir: workdir,
                          writableRootfs: writableRootfs, seccomp: seccomp, outputLimit: outputLimit,
                          tmpSize: tmpSize, writableSize: writableSize, hostname: hostname, noCgroupLimits: noCgroupLimits,
                          json: json, command: command)
    }

    func run() throws {
        throw ExitCode(options.execute())
    }

    /// One line on stderr and exit 125: the sandbox was never set up.
    static func fail(_ error: Error) -> Never {
        FileDescriptorWriter.write(Array("dgrid: \(UntrustedText.lineSafe("\(error)"))\n".utf8), to: STDERR_FILENO)
        Glibc.exit(125)
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
