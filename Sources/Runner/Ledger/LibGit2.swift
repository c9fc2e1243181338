import CGit2
import CGitStream
#if canImport(Glibc)
import Glibc
#endif

/// The process-wide libgit2 state and its error reporting.
enum LibGit2 {
    /// git_libgit2_init, exactly once per process, on first use; libgit2 keeps a
    /// reference count, so initialising it again (or never shutting it down) is
    /// harmless, but it must happen before any other call.
    static let initialized: Bool = {
        guard git_libgit2_init() > 0 else { return false }
        // libgit2 re-hashes (SHA-1DC) every object it reads; a fold on a grid with a
        // 4,000-entry folder read that 200 KB tree four times. Objects are verified where
        // they enter the mirror: a fetched pack by the indexer, which hashes every object
        // to name it; a loose object by `LooseObjectCheck` before its first read. The
        // mirror is this user's, 0700: a file changed under it is not a threat we model.
        _ = dgrid_git_skip_hash_on_read()
        // libgit2 caches no tree over 4 KB: main's `tasks/completed/` (200 KB at 2,000
        // folded tasks) was inflated again by every reader of one fold — the listing,
        // the tree update, and the push's walk of what the server already has.
        _ = dgrid_git_cache_trees_up_to(treeCacheLimit)
        // Our TCP stream: TCP_NODELAY (libgit2's leaves Nagle on, and every push
        // paid a 40 ms delayed-ACK stall) and a bound on each connect, read and
        // write, so a silent server fails an operation instead of hanging a worker.
        return dgrid_git_stream_register(Int32(networkIdleTimeoutSeconds)) == 0
    }()

    /// How long a connection may stay silent (connecting, or mid-read or
    /// mid-write) before the operation fails; retries are the caller's.
    static let networkIdleTimeoutSeconds = 60

    /// The largest tree libgit2 keeps parsed in its object cache (whose total stays
    /// capped by libgit2's own 256 MB limit): a folder of 100,000 folded tasks.
    static let treeCacheLimit = 16 << 20

    /// libgit2's last error on this thread, read immediately after the failing call
    /// (the next call may overwrite it).
    struct Failure {
        let code: Int32
        let gitClass: Int32
        let message: String

        init(code: Int32) {
            self.code = code
            if let last = git_error_last() {
                gitClass = last.pointee.klass
                message = last.pointee.message.map { String(cString: $0) } ?? "no message"
            } else {
                gitClass = 0
                message = "libgit2 returned \(code) without a message"
            }
        }

        var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }
    }
}

/// Owns a libgit2 object pointer and frees it with the matching function.
final class GitHandle {
    let pointer: OpaquePointer
    private let free: (OpaquePointer) -> Void

    init(_ pointer: OpaquePointer, free: @escaping (OpaquePointer) -> Void) {
        self.pointer = pointer
        self.free = free
    }

    deinit { free(pointer) }
}

/// A C string array for libgit2 (`git_strarray`), valid while this value lives.
final class CStringArray {
    private var pointers: [UnsafeMutablePointer<CChar>?]

    init(_ strings: [String]) {
        pointers = strings.map { strdup($0) }
    }

    deinit { pointers.forEach { free($0) } }

    func withStrArray<T>(_ body: (UnsafePointer<git_strarray>) -> T) -> T {
        let count = pointers.count
        return pointers.withUnsafeMutableBufferPointer { buffer in
            var array = git_strarray(strings: buffer.baseAddress, count: count)
            return body(&array)
        }
    }
}
