import CArchive
import CShims
import Glibc
import SandboxSupport

/// File contents and xattrs of one entry.
extension LayerExtraction {
    /// Writes the entry's data blocks at their offsets (sparse files skip the
    /// holes); returns the end of the last block.
    func copyData(from archive: OpaquePointer, to fd: Int32) throws(EntryFailure) -> UInt64 {
        var end: UInt64 = 0
        while true {
            var buffer: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let status = archive_read_data_block(archive, &buffer, &size, &offset)
            if status == ARCHIVE_EOF { return end }
            guard status == ARCHIVE_OK else { throw .archive }
            guard var next = buffer, size > 0, offset >= 0 else { continue }
            var remaining = size
            var position = off_t(offset)
            while remaining > 0 {
                let written = pwrite(fd, next, remaining, position)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw .system(operation: "write", errno: errno)
                }
                next += written
                remaining -= written
                position += off_t(written)
            }
            end = max(end, UInt64(offset) + UInt64(size))
        }
    }

    /// Restores the allowlisted xattrs onto `fd`; counts the rest as skipped.
    func restoreXattrs(_ entry: OpaquePointer, on fd: Int32) throws(EntryFailure) {
        guard archive_entry_xattr_reset(entry) > 0 else { return }
        var key: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while archive_entry_xattr_next(entry, &key, &value, &size) == ARCHIVE_OK {
            guard let key else { continue }
            let text = String(cString: key)
            // Never: file capabilities, LSM labels, overlayfs's own trusted.overlay.*
            // and user.overlay.* (what it reads in a user namespace, where
            // sandboxes mount it): opaque marks come only from .wh..wh..opq.
            let refused = text.hasPrefix("security.") || text.hasPrefix("trusted.") || text.hasPrefix("user.overlay.")
            guard !refused, xattrPrefixes.contains(where: { text.hasPrefix($0) }) else {
                report.skippedXattrs += 1
                continue
            }
            if dgrid_unpack_fsetxattr(fd, key, value, size) != 0 {
                let err = errno
                throw .system(operation: "set xattr \(UntrustedText.shown(bytes: Array(text.utf8)))", errno: err)
            }
        }
    }
}
