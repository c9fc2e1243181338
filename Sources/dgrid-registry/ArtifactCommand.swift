import ArgumentParser
import CShims
import DGridCLI
import Glibc
import Registry
import Sandbox

/// `dgrid-registry artifact push|fetch|check`: the registry store's helper
/// (docs/ARCHITECTURE.md §10). The worker and `dgrid result --download` run it —
/// they carry no HTTP stack — so these verbs are hidden from help; people can
/// run them too (the benchmark does). One line on stderr when they fail, and the
/// exit status says what kind of failure (`ArtifactHelperExit`): 4 missing,
/// 5 corrupt, 1 anything else.
struct ArtifactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifact",
        abstract: "Push task artifacts to a registry as an OCI artifact, and read them back verified (the worker's helper).",
        shouldDisplay: false,
        subcommands: [ArtifactPushCommand.self, ArtifactFetchCommand.self, ArtifactCheckCommand.self]
    )

    /// The end of a verb: one line and the exit status for its kind.
    static func fail(_ error: ArtifactHelperError) -> Never {
        ImageCLI.note("\(error)")
        Glibc.exit(error.exit.rawValue)
    }

    /// Run by a worker, a helper dies with it (SIGTERM) rather than push for nobody.
    static func dieWithParent() {
        if dgrid_die_with_parent() == -ESRCH { Glibc.exit(ArtifactHelperExit.failed.rawValue) }
    }

    static func repository(_ text: String) -> ArtifactRepository {
        do {
            return try ArtifactRepository(parsing: text)
        } catch {
            fail(.request(error.description))
        }
    }
}

struct ArtifactPushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push files as one OCI artifact (one layer per file, titled by its name); print the manifest's location.",
        discussion: """
        Either --request (an ArtifactPushRequest as JSON on stdin, with the files as inherited \
        descriptors: what the worker sends) or --repository, --tag and --file TITLE=PATH.
        """)

    @Option(help: ArgumentHelp("The repository, HOST[:PORT]/PATH.", valueName: "REPOSITORY"))
    var repository: String?

    @Option(help: ArgumentHelp("The tag's stem (a task id); the tag is STEM_<12 hex of the manifest digest>.", valueName: "STEM"))
    var tag: String?

    @Option(name: .customLong("file"), help: ArgumentHelp("A file to push, titled TITLE (repeatable).", valueName: "TITLE=PATH"))
    var files: [String] = []

    @Flag(help: "Read the request as JSON from stdin instead.")
    var request = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var registry: RegistryCLIOptions

    func run() throws {
        ArtifactCommand.dieWithParent()
        let request = request ? Self.readRequest() : flagRequest()
        let options = registry.clientOptions(state: StateDirectory.forThisUser())
        let report: ArtifactPushReport
        do {
            report = try ArtifactPusher(options: options).push(request) { step in
                guard !json else { return }
                switch step {
                case .hashed(let title, let digest, let size, let ms):
                    ImageCLI.note("\(UntrustedText.quoted(title)): \(digest.short), \(size) bytes, hashed in \(Int(ms)) ms")
                case .present(let digest):
                    ImageCLI.note("\(digest.short): already in the registry")
                case .uploaded(let digest, let size, let ms):
                    ImageCLI.note("\(digest.short): \(size) bytes uploaded in \(Int(ms)) ms")
                }
            }
        } catch {
            ArtifactCommand.fail(error)
        }
        if json {
            do {
                FileDescriptorWriter.write(try JSONDocument.encode(report) + [10], to: STDOUT_FILENO)
            } catch {
                ArtifactCommand.fail(.request(error.description))
            }
        } else {
            FileDescriptorWriter.write(Array("\(report.location) \(report.tag)\n".utf8), to: STDOUT_FILENO)
        }
    }

    /// The request on stdin (a worker's: at most 1,000 files, each a path of at most 4 KiB).
    static func readRequest() -> ArtifactPushRequest {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { FileIO.read(STDIN_FILENO, into: $0) }
            if n < 0 { ArtifactCommand.fail(.request("reading stdin: \(errnoText(errno))")) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > 16 << 20 { ArtifactCommand.fail(.request("the request on stdin is larger than 16 MiB")) }
        }
        do {
            return try JSONDocument.decode(ArtifactPushRequest.self, from: bytes, what: "artifact push request")
        } catch {
            ArtifactCommand.fail(.request(error.description))
        }
    }

    private func flagRequest() -> ArtifactPushRequest {
        guard let repository, let tag, !files.isEmpty else {
            ArtifactCommand.fail(.request("give --repository, --tag and at least one --file TITLE=PATH, or --request"))
        }
        var list: [ArtifactPushRequest.File] = []
        for spec in files {
            guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex else {
                ArtifactCommand.fail(.request("--file \(UntrustedText.quoted(spec)): expected TITLE=PATH"))
            }
            let title = String(spec[..<equals]), path = String(spec[spec.index(after: equals)...])
            let fd = FileIO.open(path, O_RDONLY | O_NONBLOCK)
            var info = stat()
            guard fd >= 0, fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                ArtifactCommand.fail(.source(title: title, reason: "\(path): not a readable regular file"))
            }
            list.append(.init(title: title, mediaType: "application/octet-stream", fd: fd, size: UInt64(info.st_size)))
        }
        return ArtifactPushRequest(repository: repository, tagStem: tag, files: list)
    }
}

struct ArtifactFetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Read one blob of an artifact repository into a file, checked against its digest and size as it arrives.")

    @Option(help: ArgumentHelp("The repository, HOST[:PORT]/PATH.", valueName: "REPOSITORY"))
    var repository: String

    @Option(help: ArgumentHelp("The blob's digest.", valueName: "sha256:HEX"))
    var digest: String

    @Option(help: ArgumentHelp("Its size in bytes.", valueName: "BYTES"))
    var size: UInt64

    @Option(help: ArgumentHelp("A new file to write (created; removed again if the bytes are wrong).", valueName: "FILE"))
    var out: String?

    @Option(help: ArgumentHelp("An inherited, empty, writable descriptor to write instead (left empty if the bytes are wrong).", valueName: "FD"))
    var outFd: Int32?

    @OptionGroup var registry: RegistryCLIOptions

    func run() throws {
        ArtifactCommand.dieWithParent()
        let repository = ArtifactCommand.repository(repository)
        let parsed: Digest
        do {
            parsed = try Digest(parsing: digest)
        } catch {
            ArtifactCommand.fail(.request(error.description))
        }
        let fd: Int32
        switch (out, outFd) {
        case (let path?, nil):
            fd = FileIO.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644)
            guard fd >= 0 else { ArtifactCommand.fail(.request("creating \(path): \(errnoText(errno))")) }
        case (nil, let given?):
            fd = given
        default:
            ArtifactCommand.fail(.request("give one of --out FILE and --out-fd FD"))
        }
        do {
            try ArtifactPusher(options: registry.clientOptions(state: StateDirectory.forThisUser()))
                .fetch(repository, digest: parsed, size: size, into: fd)
        } catch {
            if let out { unlink(out) }
            ArtifactCommand.fail(error)
        }
    }
}

struct ArtifactCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that the registry answers and takes this host's pushes to a repository.")

    @Option(help: ArgumentHelp("The repository, HOST[:PORT]/PATH.", valueName: "REPOSITORY"))
    var repository: String

    @OptionGroup var registry: RegistryCLIOptions

    func run() throws {
        ArtifactCommand.dieWithParent()
        do {
            try ArtifactPusher(options: registry.clientOptions(state: StateDirectory.forThisUser())).check(ArtifactCommand.repository(repository))
        } catch {
            ArtifactCommand.fail(error)
        }
    }
}
