import Glibc

/// The setuid helpers `newuidmap` and `newgidmap`: the only way an
/// unprivileged user maps ids it does not own outright (its /etc/subuid and
/// /etc/subgid ranges) into a user namespace. Used for rootless sandboxes and
/// for the rootless layer unpacker (docs/ARCHITECTURE.md §5, "Rootless").
package enum IDMapHelper {
    /// One line of a map: `count` ids from `inside` map to `outside`.
    package struct Extent: Sendable, Equatable {
        package let inside: UInt32
        package let outside: UInt32
        package let count: UInt32

        package init(inside: UInt32, outside: UInt32, count: UInt32) {
            self.inside = inside
            self.outside = outside
            self.count = count
        }
    }

    package enum Failure: Error, Equatable {
        /// The helper could not be started.
        case spawn(helper: String, errno: Int32)
        /// It ran and refused (its own message went to stderr).
        case exited(helper: String, status: Int32)
    }

    /// Runs `helper PID INSIDE OUTSIDE COUNT...` with an empty environment
    /// and waits for it.
    package static func map(pid: pid_t, helper: String, _ extents: [Extent]) throws(Failure) {
        let args = CStringArray([helper, "\(pid)"] + extents.flatMap { ["\($0.inside)", "\($0.outside)", "\($0.count)"] })
        let env = CStringArray([])
        var child: pid_t = 0
        let spawned = args.withUnsafeArgv { argv in
            env.withUnsafeArgv { envp in
                posix_spawn(&child, helper, nil, nil, UnsafeMutablePointer(mutating: argv), UnsafeMutablePointer(mutating: envp))
            }
        }
        guard spawned == 0 else { throw .spawn(helper: helper, errno: spawned) }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw .exited(helper: helper, status: status) }
    }
}
