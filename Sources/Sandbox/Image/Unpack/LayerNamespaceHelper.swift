import CShims
import FoundationEssentials
import Glibc
import SandboxSupport

/// Rootless layer writes that keep the image's owners (docs/ARCHITECTURE.md §5,
/// "Rootless"). A user cannot give files away, so a layer unpacked as the user
/// would be all the user's: a host id a rootless sandbox does not map, shown
/// there as 65534, with files closed to "other" unreadable to the task. So,
/// for a user with subordinate ids, dgrid re-executes itself
/// (`/proc/self/exe --dgrid-layer-helper ACTION`) in a user namespace mapped
/// exactly as a rootless sandbox is — inside 0…count-1 are the subordinate
/// ids — plus the user's own id (as `count`, so the helper can write in the
/// user's store). As root of that namespace the helper unpacks with `chown`:
/// a file the image gives to 1000 belongs to subordinate id start+1000, which
/// is 1000 again inside every rootless sandbox. Layers so made are removed
/// the same way (the user could not delete them directly).
///
/// The helper has no mount namespace of its own and no more power than the
/// user over the user's files; over the subordinate ids it has what
/// `newuidmap` granted the user anyway.
package enum LayerNamespaceHelper {
    package static let flag = "--dgrid-layer-helper"

    package enum Action: Codable, Equatable {
        case unpack(blobPath: String, mediaType: String, diffID: Digest, destination: String)
        case remove(parent: String, name: String)
    }

    enum Outcome: Codable {
        case unpacked(UnpackReport)
        case unpackFailed(UnpackError)
        case removed
        case removeFailed(operation: String, path: String, errno: Int32)
    }

    /// The subordinate ranges when this process writes layers through the
    /// helper: not root, and the user has ranges and the setuid helpers.
    package static func subordinateRanges() -> (uids: SubordinateRange, gids: SubordinateRange)? {
        guard geteuid() != 0, case .subordinate(let uids, let gids) = RootlessIDMapping.forCurrentUser() else { return nil }
        return (uids, gids)
    }

    // MARK: the caller's side

    /// Runs `action` in the helper and returns what it reported. Throws a
    /// one-line reason when the helper itself could not do its job.
    static func run(_ action: Action, uids: SubordinateRange, gids: SubordinateRange) throws(HelperFailure) -> Outcome {
        let request: [UInt8]
        do {
            request = try JSONDocument.encode(action)
        } catch {
            throw HelperFailure("cannot encode the request: \(error)")
        }
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        guard dgrid_pipe_cloexec(&toChild) == 0 else { throw HelperFailure("pipe: \(errnoText(errno))") }
        guard dgrid_pipe_cloexec(&fromChild) == 0 else {
            close(toChild[0]); close(toChild[1])
            throw HelperFailure("pipe: \(errnoText(errno))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, toChild[0], STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], STDOUT_FILENO)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let argv = CStringArray(["dgrid-layer-helper", flag, String(decoding: request, as: UTF8.self)])
        let envp = CStringArray([])
        var pid: pid_t = 0
        let spawned = argv.withUnsafeArgv { a in
            envp.withUnsafeArgv { e in
                posix_spawn(&pid, "/proc/self/exe", &actions, nil, UnsafeMutablePointer(mutating: a), UnsafeMutablePointer(mutating: e))
            }
        }
        close(toChild[0]); close(fromChild[1])
        let input = toChild[1], output = fromChild[0]
        defer { close(output) }
        guard spawned == 0 else {
            close(input)
            throw HelperFailure("cannot start /proc/self/exe: \(errnoText(spawned))")
        }
        func fail(_ reason: String) -> HelperFailure {
            close(input)
            kill(pid, SIGKILL)
            return HelperFailure(reason + wait(pid))
        }
        // 1. The helper is in its namespace; 2. map it; 3. let it go on.
        guard readByte(output) == UInt8(ascii: "r") else { throw fail("it did not enter a user namespace") }
        do {
            try IDMapHelper.map(pid: pid, helper: RootlessIDMapping.newuidmap,
                                [.init(inside: 0, outside: uids.start, count: uids.count),
                                 .init(inside: uids.count, outside: getuid(), count: 1)])
            try IDMapHelper.map(pid: pid, helper: RootlessIDMapping.newgidmap,
                                [.init(inside: 0, outside: gids.start, count: gids.count),
                                 .init(inside: gids.count, outside: getgid(), count: 1)])
        } catch {
            switch error {
            case .spawn(let helper, let errno): throw fail("cannot run \(helper): \(errnoText(errno))")
            case .exited(let helper, let status): throw fail("\(helper) refused the mapping (wait status \(status); see its message above)")
            }
        }
        var go = UInt8(ascii: "g")
        guard write(input, &go, 1) == 1 else { throw fail("cannot signal it: \(errnoText(errno))") }
        close(input)
        let reply = try? FileIO.readAll(output, limit: 64 << 20, what: "layer helper answer", path: "its pipe")
        let status = wait(pid)
        guard let reply, let outcome = try? JSONDecoder().decode(Outcome.self, from: Data(reply)) else {
            throw HelperFailure("it gave no readable answer" + status)
        }
        return outcome
    }

    struct HelperFailure: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// Reaps `pid`; "" for a clean exit, else a clause for the message.
    private static func wait(_ pid: pid_t) -> String {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status == 0 ? "" : " (helper wait status \(status))"
    }

    private static func readByte(_ fd: Int32) -> UInt8? {
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n == 1 { return byte }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }

    // MARK: the helper's side

    /// The helper's whole life, when `arguments` (argv) ask for it; nil
    /// otherwise. Call it first thing in `main`, while the process has one
    /// thread (unshare(CLONE_NEWUSER) refuses a threaded process). Returns the
    /// exit status; the caller exits.
    package static func helperMain(_ arguments: [String]) -> Int32? {
        guard arguments.count == 3, arguments[1] == flag else { return nil }
        func die(_ message: String) -> Int32 {
            let line = Array("dgrid-layer-helper: \(message)\n".utf8)
            _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            return 1
        }
        guard dgrid_unshare_user_namespace() == 0 else { return die("unshare(CLONE_NEWUSER): \(errnoText(errno))") }
        var ready = UInt8(ascii: "r")
        guard write(STDOUT_FILENO, &ready, 1) == 1, readByte(STDIN_FILENO) == UInt8(ascii: "g") else {
            return die("the caller did not map this namespace")
        }
        // Root of the namespace: 0 inside is the first subordinate id.
        _ = setgroups(0, nil)  // refused when setgroups is denied; no group is kept either way
        guard dgrid_become_namespace_root() == 0 else { return die("become root of the namespace: \(errnoText(errno))") }
        let action: Action
        do {
            action = try JSONDocument.decode(Action.self, from: Array(arguments[2].utf8), what: "helper request")
        } catch {
            return die("\(error)")
        }
        let outcome: Outcome
        switch action {
        case .unpack(let blobPath, let mediaType, let diffID, let destination):
            do {
                outcome = .unpacked(try LayerUnpacker.unpack(blobPath: blobPath, mediaType: mediaType,
                                                             expectedDiffID: diffID, destination: destination))
            } catch {
                outcome = .unpackFailed(error)
            }
        case .remove(let parent, let name):
            let fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 {
                outcome = .removeFailed(operation: "open", path: parent, errno: errno)
            } else {
                let err = name.withCString { removeTree(in: fd, name: $0) }
                close(fd)
                outcome = err == 0 ? .removed : .removeFailed(operation: "remove", path: "\(parent)/\(name)", errno: err)
            }
        }
        guard let reply = try? JSONDocument.encode(outcome) else { return die("cannot encode the outcome") }
        let err = reply.withUnsafeBytes { FileIO.writeAll(STDOUT_FILENO, $0) }
        return err == 0 ? 0 : die("write the outcome: \(errnoText(err))")
    }
}
