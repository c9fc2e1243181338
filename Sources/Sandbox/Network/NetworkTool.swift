import CShims
import Glibc
import SandboxSupport

/// Runs iproute2's `ip`, util-linux's `nsenter` and `nft` for a sandbox's
/// egress network (docs/ARCHITECTURE.md §9): spawned directly (no shell), with a
/// fixed environment, the script on stdin, stdout and stderr captured.
enum NetworkTool {
    struct Failure: Error, CustomStringConvertible {
        let command: String
        let detail: String
        var description: String { "\(command): \(detail)" }
    }

    /// `argv` with `input` on stdin; its stdout. A non-zero exit is a failure carrying stderr.
    @discardableResult
    static func run(_ argv: [String], input: String = "") throws(Failure) -> String {
        var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0], errors: [Int32] = [0, 0]
        guard dgrid_pipe_cloexec(&toChild) == 0, dgrid_pipe_cloexec(&fromChild) == 0, dgrid_pipe_cloexec(&errors) == 0 else {
            throw Failure(command: argv[0], detail: "pipe: \(errnoText(errno))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, errors[1], STDERR_FILENO)
        let args = CStringArray(argv), env = CStringArray(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"])
        var child: pid_t = 0
        let spawned = args.withUnsafeArgv { argvPointer in
            env.withUnsafeArgv { envp in
                posix_spawn(&child, argv[0], &actions, nil, UnsafeMutablePointer(mutating: argvPointer), UnsafeMutablePointer(mutating: envp))
            }
        }
        close(toChild[0]); close(fromChild[1]); close(errors[1])
        guard spawned == 0 else {
            close(toChild[1]); close(fromChild[0]); close(errors[0])
            throw Failure(command: argv[0], detail: "cannot start: \(errnoText(spawned))")
        }
        // Scripts are a few hundred bytes, far below a pipe's buffer: written whole before reading.
        let bytes = Array(input.utf8)
        _ = bytes.withUnsafeBytes { write(toChild[1], $0.baseAddress, $0.count) }
        close(toChild[1])
        let output = drain(fromChild[0]), stderr = drain(errors[0])
        close(fromChild[0]); close(errors[0])
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else {
            let message = String(String(decoding: stderr.prefix(2000), as: UTF8.self).split(separator: "\n").joined(separator: "; "))
            throw Failure(command: argv.joined(separator: " "), detail: message.isEmpty ? "exit status \(status)" : message)
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func drain(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0, result.count < 1 << 20 else { break }
            result.append(contentsOf: buffer[0..<count])
        }
        return result
    }
}
