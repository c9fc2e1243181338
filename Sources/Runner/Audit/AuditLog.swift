import Foundation
import Glibc
import Sandbox
import Synchronization

/// `$DGRID_HOME/audit.log` (docs/ARCHITECTURE.md §9): every trust decision and
/// security event as one JSON line. Mode 0600, opened O_APPEND (each event is
/// one write, so lines from several slots never interleave), never followed
/// through a symlink; past `maxBytes` it is rotated to `audit.log.1` … `.3`.
/// A log that cannot be written is reported once and does not stop the worker.
public final class AuditLog: Sendable {
    public static let fileName = "audit.log"
    public static let maxBytes = 16 << 20
    public static let keptRotations = 3

    public let path: String
    /// The size past which the log rotates (`AuditLog.maxBytes`; tests use less).
    let rotateBytes: Int
    private let lock = Mutex<Int32?>(nil)
    private let warned = Mutex(false)
    private let onFailure: @Sendable (String) -> Void

    public init(state: StateDirectory, onFailure: @escaping @Sendable (String) -> Void = { _ in }) throws(StateDirectoryError) {
        path = try state.directory("") + "/" + Self.fileName
        rotateBytes = Self.maxBytes
        self.onFailure = onFailure
    }

    public init(path: String, rotateBytes: Int = AuditLog.maxBytes, onFailure: @escaping @Sendable (String) -> Void = { _ in }) {
        self.path = path
        self.rotateBytes = rotateBytes
        self.onFailure = onFailure
    }

    deinit { lock.withLock { if let fd = $0 { close(fd) } } }

    public func record(_ event: AuditEvent) {
        let bytes = Array((event.line + "\n").utf8)
        lock.withLock { fd in
            do {
                if fd == nil { fd = try open() }
                var info = stat()
                if let current = fd, fstat(current, &info) == 0, Int(info.st_size) + bytes.count > rotateBytes {
                    close(current)
                    fd = nil
                    rotate()
                    fd = try open()
                }
                guard let current = fd else { return }
                let written = bytes.withUnsafeBytes { write(current, $0.baseAddress, $0.count) }
                if written != bytes.count { throw AuditError(reason: written < 0 ? errnoText(errno) : "short write") }
            } catch {
                if !warned.withLock({ let was = $0; $0 = true; return was }) {
                    onFailure("audit log \(path): \(error); events are still logged by the worker")
                }
            }
        }
    }

    private struct AuditError: Error, CustomStringConvertible { let reason: String; var description: String { reason } }

    private func open() throws -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuditError(reason: errnoText(errno)) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            close(fd)
            throw AuditError(reason: "not a regular file of this user's with mode 0600 (chmod 600, or move it away)")
        }
        return fd
    }

    private func rotate() {
        for n in stride(from: Self.keptRotations - 1, through: 1, by: -1) {
            rename("\(path).\(n)", "\(path).\(n + 1)")
        }
        rename(path, path + ".1")
    }

    /// Every event in the log and its rotations, oldest first; lines that are
    /// not events (a torn last line after a crash) are skipped.
    public static func read(path: String) -> [AuditEvent] {
        var events: [AuditEvent] = []
        for file in (1...keptRotations).reversed().map({ "\(path).\($0)" }) + [path] {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                if let event = AuditEvent.parse(String(line)) { events.append(event) }
            }
        }
        return events
    }
}
