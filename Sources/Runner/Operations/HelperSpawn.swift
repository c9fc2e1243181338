import Glibc
import SandboxSupport

/// How the worker starts a helper binary (`dgrid-registry`): posix_spawn with
/// `actions`, no signal blocked and SIGTERM, SIGINT and SIGPIPE at their
/// defaults, whatever the calling thread has — the worker's threads block
/// SIGTERM, and a helper's parent-death SIGTERM must end it.
enum HelperSpawn {
    /// The child's pid, and what posix_spawn returned (0, or an errno: no child then).
    static func spawn(_ path: String, _ arguments: [String], actions: inout posix_spawn_file_actions_t) -> (pid: pid_t, error: Int32) {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = SandboxSupport.CStringArray([path] + arguments)
        var pid: pid_t = 0
        let spawned = argv.withUnsafeArgv { posix_spawn(&pid, path, &actions, &attributes, UnsafeMutablePointer(mutating: $0), environ) }
        return (pid, spawned)
    }
}
