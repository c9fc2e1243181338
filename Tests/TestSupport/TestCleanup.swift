import Foundation
import Synchronization

/// Temporary directories a fixture hands out and no test removes itself
/// (homes, repositories, layouts used across a whole test): removed when the
/// test process exits, so a run leaves nothing in /tmp.
public enum TestCleanup {
    private static let paths = Mutex<[String]>([])
    private static let installed: Bool = {
        atexit {
            for path in TestCleanup.paths.withLock({ $0 }).reversed() { try? FileManager.default.removeItem(atPath: path) }
        }
        return true
    }()

    /// Removes `path` (and everything below it) at exit. Returns `path`.
    @discardableResult
    public static func removeAtExit(_ path: String) -> String {
        _ = installed
        paths.withLock { $0.append(path) }
        return path
    }
}
