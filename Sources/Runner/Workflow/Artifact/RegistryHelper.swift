import CShims
import Foundation
import Sandbox

/// Runs `dgrid-registry artifact push|fetch|check` for the registry store
/// (docs/ARCHITECTURE.md §10). `dgrid-grid` links no HTTP stack (a worker runs
/// for days; NIO's code cost its idle RSS for nothing — Package.swift), so the
/// worker and `dgrid result --download` hand the network to this helper: file
/// contents pass as inherited descriptors (never copied, never held in this
/// process's memory), the request as JSON on its stdin, the report as JSON on
/// its stdout, a failure as one line on its stderr and its exit status
/// (`ArtifactHelperExit`). The helper reads the registry configuration itself
/// (`$DGRID_REGISTRY_CONFIG`, `$DGRID_HOME/registry.json`, …): no credential
/// crosses this boundary, nor appears in its argv.
struct RegistryHelper {
    /// The `dgrid-registry` binary.
    let path: String
    /// Its `$DGRID_HOME/run` holds the request's unnamed file.
    let state: StateDirectory

    init(path: String, state: StateDirectory) {
        self.path = path
        self.state = state
    }

    init(settings: GridSettings) {
        self.init(path: settings.registryHelper, state: settings.state)
    }

    /// Why the helper did not do it: its exit's kind and its one line.
    struct Failure: Error, Equatable, CustomStringConvertible {
        let exit: ArtifactHelperExit
        let message: String
        /// This process's own failure (running the helper, reading its answer): its text may name host paths.
        var local = false

        var description: String { message }
    }

    /// The child's descriptors for what is passed: the i-th of `passing` is `firstPassed + i`.
    static let firstPassed: Int32 = 3
    /// More than a report of 1,000 files or an error line ever is.
    static let outputLimit = 16 << 20

    /// Pushes `request`, whose files name their descriptors as the child sees them
    /// (`firstPassed + i` for the i-th of `passing`).
    func push(_ request: ArtifactPushRequest, passing: [Int32]) -> Result<ArtifactPushReport, Failure> {
        let input: [UInt8]
        do {
            input = Array(try JSONEncoder().encode(request))
        } catch {
            return .failure(Failure(exit: .failed, message: "encoding the push request: \(error)", local: true))
        }
        switch run(["artifact", "push", "--request", "--json"], input: input, passing: passing) {
        case .failure(let failure):
            return .failure(failure)
        case .success(let stdout):
            do {
                return .success(try JSONDecoder().decode(ArtifactPushReport.self, from: Data(stdout)))
            } catch {
                return .failure(Failure(exit: .failed, message: "\(path) printed no push report: \(error)", local: true))
            }
        }
    }

    /// Blob `digest` (`size` bytes) of `repository` into the empty file `fd`, verified by the helper as it arrives.
    func fetch(_ repository: ArtifactRepository, digest: Digest, size: UInt64, into fd: Int32) -> Failure? {
        let arguments = ["artifact", "fetch", "--repository", repository.description, "--digest", digest.description,
                         "--size", "\(size)", "--out-fd", "\(Self.firstPassed)"]
        if case .failure(let failure) = run(arguments, input: nil, passing: [fd]) { return failure }
        return nil
    }

    /// The registry answers and takes this host's pushes to `repository`.
    func check(_ repository: ArtifactRepository) -> Failure? {
        if case .failure(let failure) = run(["artifact", "check", "--repository", repository.description], input: nil, passing: []) {
            return failure
        }
        return nil
    }

    /// The `Date` an http(s) Git server answers with (`dgrid doctor`'s clock
    /// check, docs/ARCHITECTURE.md §12): one GET of `url` sent with no
    /// credential, the answer's head read, its body not.
    func serverDate(_ url: String) -> Result<ServerDateReading, Failure> {
        switch run(["server-date", "--url", url], input: nil, passing: []) {
        case .failure(let failure):
            return .failure(failure)
        case .success(let stdout):
            do {
                return .success(try JSONDecoder().decode(ServerDateReading.self, from: Data(stdout)))
            } catch {
                return .failure(Failure(exit: .failed, message: "\(path) printed no server date: \(error)", local: true))
            }
        }
    }

    // MARK: - the process

    /// `path ARGUMENTS` with `input` on stdin (or /dev/null) and `passing` as
    /// descriptors 3, 4, …; its stdout when it exits 0.
    private func run(_ arguments: [String], input: [UInt8]?, passing: [Int32]) -> Result<[UInt8], Failure> {
        func failed(_ message: String) -> Result<[UInt8], Failure> { .failure(Failure(exit: .failed, message: message, local: true)) }
        var stdin: Int32 = -1
        if let input {
            let scratch: String
            do {
                scratch = try state.directory("run")
            } catch {
                return failed("a directory for the helper's request: \(error)")
            }
            stdin = dgrid_open_tmpfile(scratch)
            guard stdin >= 0 else { return failed("a file for the helper's request in \(scratch): \(errnoText(-stdin))") }
            guard input.withUnsafeBytes({ FileIO.writeAll(stdin, $0) }) == 0, lseek(stdin, 0, SEEK_SET) == 0 else {
                close(stdin)
                return failed("writing the helper's request: \(errnoText(errno))")
            }
        }
        defer { if stdin >= 0 { close(stdin) } }
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        guard dgrid_pipe_cloexec(&out) == 0 else { return failed("pipe: \(errnoText(errno))") }
        guard dgrid_pipe_cloexec(&err) == 0 else {
            close(out[0]); close(out[1])
            return failed("pipe: \(errnoText(errno))")
        }
        // Copies above every target number first, so dup2 onto 3, 4, … cannot clobber a source not yet moved.
        let high = passing.map { fcntl($0, F_DUPFD_CLOEXEC, 256) }
        defer { for fd in high where fd >= 0 { close(fd) } }
        if let bad = high.firstIndex(where: { $0 < 0 }) {
            [out[0], out[1], err[0], err[1]].forEach { close($0) }
            return failed("passing descriptor \(passing[bad]) to the helper: \(errnoText(errno))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if stdin >= 0 {
            posix_spawn_file_actions_adddup2(&actions, stdin, STDIN_FILENO)
        } else {
            posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO)
        for (index, fd) in high.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, fd, Self.firstPassed + Int32(index))
        }
        // No signal blocked in the helper: its parent-death SIGTERM must end it (`HelperSpawn`).
        let spawned = HelperSpawn.spawn(path, arguments, actions: &actions)
        close(out[1]); close(err[1])
        guard spawned.error == 0 else {
            close(out[0]); close(err[0])
            return failed("cannot run \(path): \(errnoText(spawned.error)); install dgrid-registry beside dgrid-grid")
        }
        let pid = spawned.pid
        let (stdout, stderr) = Self.drain(out[0], err[0])
        close(out[0]); close(err[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        let code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        guard code == 0 else {
            // The helper's own line, without its "dgrid: " prefix; a crash says what it was.
            let line = String(decoding: stderr, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            guard line.hasPrefix("dgrid: ") else {
                let what = line.isEmpty ? "ended with status \(code)" : "ended with status \(code): \(line)"
                return .failure(Failure(exit: .failed, message: UntrustedText.lineSafe("\(path) \(arguments.prefix(2).joined(separator: " ")) \(what)"), local: true))
            }
            return .failure(Failure(exit: ArtifactHelperExit(rawValue: code) ?? .failed, message: UntrustedText.lineSafe(String(line.dropFirst(7)))))
        }
        return .success(stdout)
    }

    /// Both pipes read to their end together (poll), so neither can fill and stall the helper.
    private static func drain(_ out: Int32, _ err: Int32) -> ([UInt8], [UInt8]) {
        var buffers: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: out, events: Int16(POLLIN), revents: 0), pollfd(fd: err, events: Int16(POLLIN), revents: 0)]
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while fds.contains(where: { $0.fd >= 0 }) {
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { if errno == EINTR { continue } else { break } }
            for index in fds.indices where fds[index].fd >= 0 && fds[index].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { FileIO.read(fds[index].fd, into: $0) }
                if n <= 0 {
                    fds[index].fd = -1
                } else if buffers[index].count < outputLimit {
                    buffers[index] += chunk[0..<n]
                }
            }
        }
        return (buffers[0], buffers[1])
    }
}
