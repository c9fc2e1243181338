import Glibc

/// Watches a task's stdout for lines that start with `prefix` (a grid task's
/// `::progress 42 message`, docs/ARCHITECTURE.md §10) and hands the rest of each
/// such line to `onLine`, on the supervising thread. Every byte passes through,
/// the ones past the capture's limit too (they are read, not spliced away, when
/// a watcher is set). A line longer than `maxLine` bytes is not a match: what
/// is kept of a partial line is bounded, whatever the task writes.
public final class OutputLineWatcher: @unchecked Sendable {
    private let prefix: [UInt8]
    private let onLine: (String) -> Void
    private var line: [UInt8] = []
    /// The current line grew past `maxLine`: ignored until its newline.
    private var overlong = false
    public static let maxLine = 512

    public init(prefix: String, onLine: @escaping (String) -> Void) {
        self.prefix = Array(prefix.utf8)
        self.onLine = onLine
    }

    func feed(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            if byte == 0x0A {
                if !overlong, line.count >= prefix.count, line.starts(with: prefix) {
                    onLine(String(decoding: line[prefix.count...], as: UTF8.self))
                }
                line.removeAll(keepingCapacity: true)
                overlong = false
            } else if !overlong {
                if line.count < Self.maxLine {
                    line.append(byte)
                } else {
                    overlong = true
                    line.removeAll(keepingCapacity: true)
                }
            }
        }
    }
}
