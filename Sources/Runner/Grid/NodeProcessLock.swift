import Foundation
import Sandbox

/// An exclusive lock on `$DGRID_HOME/nodes/<node>.lock` (flock), held for the
/// life of a worker process: while it is held no other process on this host
/// runs as that node. The kernel drops it when the process dies, however it
/// dies, so a restarted worker that gets it knows the claims recorded under
/// its node id are an earlier process's (`GridWorker`).
final class NodeProcessLock: @unchecked Sendable {
    private let descriptor: Int32

    /// nil when another live process holds it (or the file cannot be made).
    init?(state: StateDirectory, nodeID: String) {
        let directory = state.path + "/nodes"
        mkdir(directory, 0o700)
        let fd = open(directory + "/" + nodeID + ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        descriptor = fd
    }

    deinit { close(descriptor) }
}
