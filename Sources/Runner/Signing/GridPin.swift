import Foundation
import Glibc
import Sandbox
import Synchronization

/// The grid id this host first saw for a repository, kept on the host
/// (`$DGRID_HOME/grids/<hash>.grid-id`, docs/ARCHITECTURE.md §9). Main's
/// `.dgrid/grid.json` is a file any repository writer can rewrite: without a
/// pin, rewriting it to another grid's id would make that grid's signed tasks
/// valid here (a replay). Once pinned, a different id on main refuses every
/// signed task until an operator removes the pin.
public final class GridPin: Sendable {
    public let path: String
    private let pinned = Mutex<GridID?>(nil)

    public init(path: String) {
        self.path = path
        if let data = FileManager.default.contents(atPath: path),
           let id = GridID(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
            pinned.withLock { $0 = id }
        }
    }

    /// The id signed tasks must name: main's, once it agrees with the pin
    /// (pinned now when there was none); a refusal when they differ.
    public func check(_ seen: GridID?) -> Result<GridID?, TaskTrustRefusal> {
        pinned.withLock { pin in
            guard let current = pin else {
                guard let seen else { return .success(nil) }
                // First sight: keep it (best effort; an unwritable pin is checked in memory).
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                if fd >= 0 {
                    let bytes = Array((seen.value + "\n").utf8)
                    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    close(fd)
                }
                pin = seen
                return .success(seen)
            }
            guard seen == current else { return .failure(.gridChanged(pinned: current, seen: seen?.value, pinFile: path)) }
            return .success(current)
        }
    }
}
