import ArgumentParser
import Glibc
import Sandbox

struct SandboxRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run CMD in a sandbox and exit with its status.",
        discussion: """
        Exit status: the command's own; 124 on timeout; 128+N when killed by signal N;
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

    @Option(name: .long, help: "Hostname inside the sandbox.")
    var hostname: String = "dgrid"

    @Flag(name: .long, help: "Run even where no cgroup can be created; limits are then reported as not enforced.")
    var noCgroupLimits = false

    @Flag(name: .long, help: "Print the outcome as JSON instead of passing the output through.")
    var json = false

    @Argument(parsing: .remaining, help: ArgumentHelp("Command and arguments.", valueName: "CMD"))
    var command: [String] = []

    func run() throws {
        let spec: SandboxSpec
        var image: ResolvedImage?
        do {
            image = try resolveImage()
            spec = try makeSpec(image: image)
        } catch {
            Self.fail(error)
        }
        // The lease keeps `dgrid image gc` off the image's layers while they are mounted.
        defer { image?.lease.release() }
        let runner = SandboxRunner.forThisHost()
        runner.removeStaleGroups()
        let outcome: Outcome
        do {
            outcome = try runner.run(spec)
        } catch {
            Self.fail(error)
        }
        if json {
            print(OutcomeJSON.render(outcome))
        } else {
            FileDescriptorWriter.write(outcome.stdout.bytes, to: STDOUT_FILENO)
            FileDescriptorWriter.write(outcome.stderr.bytes, to: STDERR_FILENO)
            for note in OutcomeNotes.lines(outcome) {
                FileDescriptorWriter.write(Array("dgrid: \(note)\n".utf8), to: STDERR_FILENO)
            }
        }
        throw ExitCode(outcome.exitCode)
    }

    /// The allowlisted image for `--image`, refused before anything is read when not allowlisted.
    private func resolveImage() throws -> ResolvedImage? {
        switch (rootfs, image) {
        case (nil, nil): throw UsageError("give --rootfs DIR or --image NAME|DIGEST")
        case (_?, _?): throw UsageError("give either --rootfs or --image, not both")
        case (_?, nil): return nil
        case (nil, let reference?): return try ImageResolver(store: .forThisUser()).resolve(reference: reference)
        }
    }

    private func makeSpec(image: ResolvedImage?) throws -> SandboxSpec {
        var args = command
        if args.first == "--" { args.removeFirst() }
        var spec: SandboxSpec
        if let image {
            // Docker's rule: the image's Entrypoint, then the given command or else its Cmd.
            args = image.config.argv(taskArguments: args)
            spec = SandboxSpec(layers: image.layerDirectories, command: args,
                               environment: image.config.environment + env)
            spec.workingDirectory = image.config.workingDirectory
            if let user = image.config.user { spec.user = user }
        } else {
            spec = SandboxSpec(rootfs: rootfs ?? "", command: args, environment: env)
        }
        guard !args.isEmpty else { throw UsageError("no command given: dgrid sandbox run --rootfs DIR -- CMD [ARG...]") }
        if let workdir { spec.workingDirectory = workdir }
        spec.hostname = hostname
        spec.writableRootfs = writableRootfs
        spec.allowWithoutCgroupLimits = noCgroupLimits
        if let user { spec.user = try UserID(parsing: user) }
        if let memory { spec.limits.memoryBytes = try ByteCount(parsing: memory).bytes }
        if let cpus { spec.limits.cpus = try CPUQuota(parsing: cpus) }
        if let pids {
            guard let n = Int(pids), n > 0 else {
                throw ValueError(kind: "pids limit", text: pids, hint: "use a positive whole number, e.g. 128")
            }
            spec.limits.pids = n
        }
        if let timeout {
            guard let t = Double(timeout), t > 0, t < 1e7 else {
                throw ValueError(kind: "timeout", text: timeout, hint: "use a positive number of seconds, e.g. 30")
            }
            spec.timeoutSeconds = t
        }
        if let outputLimit {
            let limit = try ByteCount(parsing: outputLimit)
            guard limit.bytes <= 1 << 30 else {
                throw ValueError(kind: "output limit", text: outputLimit, hint: "at most 1g is kept in memory")
            }
            spec.outputLimit = Int(limit.bytes)
        }
        if let tmpSize { spec.tmpSize = try ByteCount(parsing: tmpSize) }
        spec.seccomp = try SeccompChoice.filter(for: seccomp)
        return spec
    }

    /// One line on stderr and exit 125: the sandbox was never set up.
    static func fail(_ error: Error) -> Never {
        FileDescriptorWriter.write(Array("dgrid: \(error)\n".utf8), to: STDERR_FILENO)
        Glibc.exit(125)
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
