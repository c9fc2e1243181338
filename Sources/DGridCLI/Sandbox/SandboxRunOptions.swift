import Glibc
import Sandbox

/// `dgrid sandbox run`'s flags as plain values, and the start path that uses
/// them. Both parsers produce this: ArgumentParser's `SandboxRun` (help,
/// errors, every spelling) and `SandboxRunFastPath` (the canonical spelling,
/// without ArgumentParser's ~2.7 ms of reflection on the start path).
struct SandboxRunOptions: Equatable {
    var rootfs: String?
    var image: String?
    var memory: String?
    var cpus: String?
    var pids: String?
    var timeout: String?
    var user: String?
    var env: [String] = []
    var workdir: String?
    var writableRootfs = false
    var seccomp: String?
    var outputLimit: String?
    var tmpSize: String?
    var writableSize: String?
    var hostname: String = "dgrid"
    var noCgroupLimits = false
    var json = false
    var command: [String] = []

    /// Sets up the sandbox, runs the command, prints the outcome; returns the exit status.
    func execute() -> Int32 {
        let spec: SandboxSpec
        var image: ResolvedImage?
        do {
            image = try resolveImage()
            spec = try makeSpec(image: image)
        } catch {
            SandboxRun.fail(error)
        }
        // The lease keeps `dgrid image gc` off the image's layers while they are mounted.
        defer { image?.lease.release() }
        let runner = SandboxRunner.forThisHost()
        runner.removeStaleGroups()
        let outcome: Outcome
        do {
            outcome = try runner.run(spec)
        } catch {
            SandboxRun.fail(error)
        }
        if json {
            print(OutcomeJSON.render(outcome))
        } else {
            FileDescriptorWriter.write(outcome.stdout.bytes, to: STDOUT_FILENO)
            FileDescriptorWriter.write(outcome.stderr.bytes, to: STDERR_FILENO)
            let notes = OutcomeNotes.lines(outcome)
            if !notes.isEmpty {
                FileDescriptorWriter.write(NoteLineStart.separator(afterStdout: outcome.stdout.bytes, stderr: outcome.stderr.bytes),
                                           to: STDERR_FILENO)
            }
            for note in notes {
                FileDescriptorWriter.write(Array("dgrid: \(note)\n".utf8), to: STDERR_FILENO)
            }
        }
        return outcome.exitCode
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
            spec = SandboxSpec(root: .layers(image.layers), command: args,
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
        if let writableSize { spec.writableRootfsSize = try ByteCount(parsing: writableSize) }
        spec.seccomp = try SeccompChoice.filter(for: seccomp)
        return spec
    }
}
