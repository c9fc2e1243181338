import CArchive
import Glibc
import SandboxSupport

/// Reads an image archive (an OCI layout tar or a `docker save` tar, plain or
/// gzip/zstd compressed) member by member with libarchive. Nothing is ever
/// extracted by path: a member's bytes are streamed straight into the content
/// store (`ArchiveMemberSource`) or, for the few small JSON files, into memory.
final class TarMembers {
    enum Kind: Equatable {
        case file(size: Int64)
        case symlink(target: String)
        case hardlink(target: String)
        case directory
        case other
    }

    struct Member: Equatable {
        /// Normalized: no leading "./" or "/", no empty or "." components.
        /// nil when the name has a ".." component (never a name we look up).
        let name: String?
        let rawName: String
        let kind: Kind
    }

    let path: String
    private let archive: OpaquePointer
    private let fd: Int32

    /// Members read before giving up on an archive (a docker save of a
    /// 128-layer image has a few hundred).
    static let maxMembers = 100_000

    private var count = 0

    init(path: String) throws(ImageError) {
        self.path = path
        let fd = FileIO.open(path, O_RDONLY)
        guard fd >= 0 else { throw .system(operation: "open", path: path, errno: errno) }
        guard let archive = archive_read_new() else {
            close(fd)
            throw .importSource(path: path, reason: "libarchive: out of memory")
        }
        self.fd = fd
        self.archive = archive
        // Only what dgrid links statically (see Package.swift): tar formats, gzip, zstd.
        archive_read_support_format_tar(archive)
        archive_read_support_format_gnutar(archive)
        archive_read_support_filter_gzip(archive)
        archive_read_support_filter_zstd(archive)
        // Every property is set: from here a throw runs deinit, which frees both.
        guard archive_read_open_fd(archive, fd, 1 << 20) == ARCHIVE_OK else {
            throw .importSource(path: path, reason: "not a tar archive (\(Self.errorText(archive)))")
        }
    }

    deinit {
        archive_read_free(archive)
        close(fd)
    }

    /// The next member's header, or nil at the end. A libarchive warning is
    /// an error here: it would otherwise skip the entry and carry on.
    func next() throws(ImageError) -> Member? {
        var entry: OpaquePointer?
        let status = withUTF8Locale { archive_read_next_header(archive, &entry) }
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK, let entry else {
            throw .importSource(path: path, reason: "unreadable archive after \(count) members: \(Self.errorText(archive))")
        }
        count += 1
        guard count <= Self.maxMembers else {
            throw .importSource(path: path, reason: "more than \(Self.maxMembers) members")
        }
        guard let rawPointer = archive_entry_pathname(entry) else {
            throw .importSource(path: path, reason: "member \(count) has no readable name")
        }
        let rawName = String(cString: rawPointer)
        let kind: Kind
        if let link = archive_entry_hardlink(entry) {
            kind = .hardlink(target: String(cString: link))
        } else {
            // libarchive's AE_IF* values (the macros are casts Swift does not import).
            switch archive_entry_filetype(entry) & 0o170000 {
            case 0o100000:
                guard archive_entry_size_is_set(entry) != 0, archive_entry_size(entry) >= 0 else {
                    throw .importSource(path: path, reason: "member '\(UntrustedText.shown(rawName))' has no size")
                }
                kind = .file(size: archive_entry_size(entry))
            case 0o120000:
                kind = .symlink(target: archive_entry_symlink(entry).map { String(cString: $0) } ?? "")
            case 0o040000:
                kind = .directory
            default:
                kind = .other
            }
        }
        return Member(name: Self.normalize(rawName), rawName: rawName, kind: kind)
    }

    /// The current member's data as a byte source for the content store.
    func dataSource(describing member: Member) -> ArchiveMemberSource {
        ArchiveMemberSource(archive: archive, sourceDescription: "\(path) member '\(UntrustedText.shown(member.rawName))'")
    }

    /// The current member's data in memory, refused beyond `limit` bytes.
    func readData(of member: Member, limit: Int) throws(ImageError) -> [UInt8] {
        if case .file(let size) = member.kind, size > limit {
            throw .blobTooLarge(digest: nil, what: "\(path) member '\(UntrustedText.shown(member.rawName))'", size: size, limit: Int64(limit))
        }
        var source = dataSource(describing: member)
        var result: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { chunk.deallocate() }
        while true {
            let n = try source.read(into: chunk)
            if n == 0 { return result }
            result.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
            guard result.count <= limit else {
                throw .blobTooLarge(digest: nil, what: source.sourceDescription, size: Int64(result.count), limit: Int64(limit))
            }
        }
    }

    /// "./a//b/" → "a/b"; nil when a component is "..".
    static func normalize(_ name: String) -> String? {
        var parts: [Substring] = []
        for component in name.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { return nil }
            parts.append(component)
        }
        return parts.joined(separator: "/")
    }

    /// A symlink target resolved against the link's directory, inside the archive.
    static func resolve(link target: String, from name: String) -> String? {
        if target.hasPrefix("/") { return normalize(target) }
        var parts = name.split(separator: "/").dropLast().map(String.init)
        for component in target.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
                continue
            }
            parts.append(String(component))
        }
        return parts.joined(separator: "/")
    }

    static func errorText(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    /// pax names are UTF-8; in the "C" locale libarchive cannot convert them
    /// and warns. This thread only, restored after.
    private func withUTF8Locale<T>(_ body: () -> T) -> T {
        let utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil)
        let previous = utf8.map { uselocale($0) }
        defer {
            if let previous { uselocale(previous) }
            if let utf8 { freelocale(utf8) }
        }
        return body()
    }
}

/// The data of the archive's current member, read with `archive_read_data`.
struct ArchiveMemberSource: ByteSource {
    let archive: OpaquePointer
    let sourceDescription: String

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageError) -> Int {
        let n = archive_read_data(archive, buffer.baseAddress, buffer.count)
        guard n >= 0 else {
            throw .readFailed(digest: nil, source: sourceDescription, message: TarMembers.errorText(archive))
        }
        return n
    }
}
