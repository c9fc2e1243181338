import Glibc
import SandboxSupport

/// Runs an admin's vulnerability scanner on a stored image (`dgrid image
/// allow --scan-command 'trivy image --input {layout}'`). The image is
/// exported as an OCI image layout into a private temporary directory; the
/// command is split into argv without a shell (quotes group, nothing is
/// expanded) and `{layout}` in any word is replaced by that directory (when
/// no word has it, the directory is appended). The scanner's exit status and
/// the first line of its output are recorded; the decision stays the admin's.
public struct ImageScanner: Sendable {
    public let store: ImageStore

    /// Output kept to find the first line; the rest is drained.
    static let keptOutput = 64 * 1024

    public init(store: ImageStore) {
        self.store = store
    }

    public func scan(image: StoredImage, name: String, command: String) throws(ImageError) -> ScanSummary {
        var argv = try CommandWords.split(command)
        guard !argv.isEmpty else { throw .scan(command: command, reason: "empty command") }
        let scratch = try store.state.imageDirectory("images/tmp")
        let name = "scan-\(FileIO.uniqueSuffix())"
        let layout = "\(scratch)/\(name)"
        guard mkdir(layout, 0o700) == 0 else { throw .system(operation: "create", path: layout, errno: errno) }
        defer { try? removeDirectoryTree(parent: scratch, name: name) }
        try LayoutExporter(store: store).export(image, name: name, to: layout)

        if argv.contains(where: { $0.contains("{layout}") }) {
            argv = argv.map { $0.replacing("{layout}", with: layout) }
        } else {
            argv.append(layout)
        }
        let (status, output) = try run(argv, command: command)
        let firstLine = output.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { String($0).trimmingWhitespace() }.first { !$0.isEmpty } ?? ""
        return ScanSummary(exitStatus: status, summary: UntrustedText.shown(firstLine, limit: 300), command: command)
    }

    /// posix_spawnp with stdin from /dev/null and stdout+stderr into one pipe.
    private func run(_ argv: [String], command: String) throws(ImageError) -> (Int32, String) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw .scan(command: command, reason: "pipe: \(errnoText(errno))") }
        // Close-on-exec on both ends: the child gets the write end only as 1 and 2.
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        let arguments = CStringArray(argv)
        var pid: pid_t = 0
        let spawned = arguments.withUnsafeArgv { args in
            posix_spawnp(&pid, argv[0], &actions, nil, UnsafeMutablePointer(mutating: args), environ)
        }
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw .scan(command: command, reason: "cannot start \(UntrustedText.shown(argv[0])): \(errnoText(spawned))")
        }
        var kept: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { FileIO.read(fds[0], into: $0) }
            if n <= 0 { break }
            if kept.count < Self.keptOutput { kept.append(contentsOf: chunk[0..<min(n, Self.keptOutput - kept.count)]) }
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (macros are not imported).
        let signal = status & 0x7f
        let code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        return (code, String(decoding: kept, as: UTF8.self))
    }
}

/// Writes a stored image out as an OCI image layout directory (for scanners
/// and other OCI tools). Blobs are copied, never linked: a tool that writes
/// into its input must not reach the store.
struct LayoutExporter {
    let store: ImageStore

    func export(_ image: StoredImage, name: String, to directory: String) throws(ImageError) {
        let blobs = "\(directory)/blobs/sha256"
        for path in ["\(directory)/blobs", blobs] where mkdir(path, 0o700) != 0 {
            throw .system(operation: "create", path: path, errno: errno)
        }
        var digests = [image.manifestDigest, image.configDigest]
        digests.append(contentsOf: image.manifest.layers.map(\.digest))
        for digest in digests where !FileIO.exists("\(blobs)/\(digest.hex)") {
            try copy(store.content.path(for: digest), to: "\(blobs)/\(digest.hex)")
        }
        let descriptor = Descriptor(mediaType: image.manifest.mediaType, digest: image.manifestDigest, size: image.manifestSize,
                                    annotations: [Descriptor.refNameAnnotation: name])
        struct Index: Encodable {
            let schemaVersion = 2
            let mediaType = OCIMediaType.ociIndex
            let manifests: [Descriptor]
        }
        try FileIO.writeAtomically(try JSONDocument.encode(Index(manifests: [descriptor])), to: "\(directory)/index.json")
        try FileIO.writeAtomically(Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: "\(directory)/oci-layout")
    }

    private func copy(_ source: String, to target: String) throws(ImageError) {
        let input = FileIO.open(source, O_RDONLY | O_NOFOLLOW)
        guard input >= 0 else { throw .system(operation: "open", path: source, errno: errno) }
        defer { close(input) }
        let output = FileIO.open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        guard output >= 0 else { throw .system(operation: "create", path: target, errno: errno) }
        defer { close(output) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { FileIO.read(input, into: $0) }
            if n < 0 { throw .system(operation: "read", path: source, errno: errno) }
            if n == 0 { return }
            let err = chunk.withUnsafeBytes { FileIO.writeAll(output, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            guard err == 0 else { throw .system(operation: "write", path: target, errno: err) }
        }
    }
}

/// Splits a command line into words the way a shell would group them, and
/// nothing more: whitespace separates, '…' is literal, "…" allows \" and \\,
/// a backslash outside quotes escapes the next character. No variables, globs,
/// pipes or redirections: the words go to posix_spawn as argv.
enum CommandWords {
    static func split(_ text: String) throws(ImageError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            switch quote {
            case "'":
                if character == "'" { quote = nil } else { current.append(character) }
            case "\"":
                if character == "\"" {
                    quote = nil
                } else if character == "\\" {
                    escaped = true
                } else {
                    current.append(character)
                }
            default:
                if character.isWhitespace {
                    if inWord { words.append(current) }
                    current = ""
                    inWord = false
                } else if character == "'" || character == "\"" {
                    quote = character
                    inWord = true
                } else if character == "\\" {
                    escaped = true
                    inWord = true
                } else {
                    current.append(character)
                    inWord = true
                }
            }
        }
        guard quote == nil else { throw .scan(command: text, reason: "unterminated \(quote == "'" ? "single" : "double") quote") }
        guard !escaped else { throw .scan(command: text, reason: "ends with a backslash") }
        if inWord { words.append(current) }
        return words
    }
}
