#if canImport(Glibc)
import Glibc
#endif

/// A plain mutex around one ledger's libgit2 objects: a git_repository and the
/// objects read from it must not be used by two threads at once. A pthread mutex
/// rather than Synchronization.Mutex, whose `sending` results do not fit a generic
/// body returning non-Sendable libgit2 state.
final class LedgerLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func run<T>(_ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
