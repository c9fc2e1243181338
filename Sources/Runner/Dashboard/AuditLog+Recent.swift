import Foundation
import Glibc

extension AuditLog {
    /// The newest `count` events of the log at `path` and its rotations, newest
    /// first, for the dashboard (docs/ARCHITECTURE.md §12). Reads at most
    /// `tailBytes` from the end of each file, newest file first, and stops once it
    /// has `count`: a log of 64 MiB is not parsed to show fifty lines. Never follows
    /// a symlink; a file that cannot be read is skipped as `read` skips it.
    public static func recent(path: String, count: Int, tailBytes: Int = 1 << 20) -> [AuditEvent] {
        var events: [AuditEvent] = []
        for file in [path] + (1...keptRotations).map({ "\(path).\($0)" }) where events.count < count {
            let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            let size = UInt64(max(0, info.st_size))
            let start = size > UInt64(tailBytes) ? size - UInt64(tailBytes) : 0
            guard (try? handle.seek(toOffset: start)) != nil, let data = try? handle.read(upToCount: Int(size - start)) else { continue }
            var lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
            // Read from the middle of the file: its first line is a piece of one.
            if start > 0, !lines.isEmpty { lines.removeFirst() }
            for line in lines.reversed() {
                guard let event = AuditEvent.parse(String(line)) else { continue }
                events.append(event)
                if events.count == count { break }
            }
        }
        return events
    }
}
