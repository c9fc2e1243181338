import CArchive
import CShims
import Glibc
import SandboxSupport

/// Creates one layer's entries below a `ConfinedTree`, one tar entry at a
/// time, never through archive_write_disk: every object is made with an *at
/// call relative to a directory fd reached without following symlinks.
///
/// Tar semantics hold inside the layer: a later entry replaces an earlier one
/// at the same path (the old one is unlinked first, never written through).
/// Directory owners, modes and times are applied after the last entry, so a
/// 0500 directory cannot block its own children and children cannot disturb
/// its mtime.
final class LayerExtraction {
    let tree: ConfinedTree
    let limits: UnpackLimits
    private let allowSetuid: Bool
    let xattrPrefixes: [String]
    /// Only root may give files away; rootless unpacking keeps our own ids.
    let chown = geteuid() == 0
    var report: UnpackReport

    var name = EntryPath()
    var target = EntryPath()
    private var apparentBytes: UInt64 = 0
    /// Directory metadata applied at the end, keyed by `EntryPath.key`.
    var directoryFixups: [[UInt8]: EntryMetadata] = [:]
    /// Directories named by `DIR/.wh..wh..opq`, marked at the end so the
    /// marker works whether it comes before or after DIR's own entry.
    var opaqueDirectories: [[UInt8]: String] = [:]
    /// Skipped devices, so a hardlink to one is skipped rather than refused.
    private var skippedDevices: Set<[UInt8]> = []

    init(tree: ConfinedTree, limits: UnpackLimits, options: UnpackOptions, diffID: Digest) {
        self.tree = tree
        self.limits = limits
        allowSetuid = options.allowSetuid
        xattrPrefixes = options.xattrAllowlist.map { $0.hasSuffix("*") ? String($0.dropLast()) : $0 }
        report = UnpackReport(diffID: diffID)
    }

    /// Creates `entry`, reading its data from `archive`.
    func apply(_ entry: OpaquePointer, from archive: OpaquePointer) throws(EntryFailure) {
        guard let rawName = archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry) else {
            throw .refused(.emptyName)
        }
        try name.parse(bufferOf(rawName), limits: limits)
        let type = archive_entry_filetype(entry) & S_IFMT
        let hardlink = archive_entry_hardlink(entry) ?? archive_entry_hardlink_utf8(entry)

        if name.lastComponentHasPrefix(".wh.") { return try whiteout() }
        if name.count == 0 { return try layerRoot(entry, type: hardlink == nil ? type : 0) }
        if let hardlink { return try link(to: hardlink) }
        switch type {
        case S_IFDIR: try directory(entry)
        case S_IFREG: try regularFile(entry, from: archive)
        case S_IFLNK: try symlink(entry)
        case S_IFIFO: try fifo(entry)
        case S_IFCHR, S_IFBLK:
            skippedDevices.insert(name.bytes)
            report.skippedDevices.append(name.display())
        default:
            throw .refused(.unsupportedType(mode: type))
        }
    }

    // MARK: Entry types

    /// "." or "./": only a directory may stand for the root (umoci
    /// CVE-2021-29136 let a symlink replace it).
    private func layerRoot(_ entry: OpaquePointer, type: mode_t) throws(EntryFailure) {
        guard type == S_IFDIR else { throw .refused(.replacesRoot(kind: kindName(type))) }
        directoryFixups[[]] = try metadata(entry, isDirectory: true)
        try restoreXattrs(entry, on: tree.root)
    }

    private func directory(_ entry: OpaquePointer) throws(EntryFailure) {
        let meta = try metadata(entry, isDirectory: true)
        let parent = try tree.parent(of: name, create: true)
        let last = name.count - 1
        if name.withComponent(last, { mkdirat(parent, $0, 0o700) }) != 0 {
            guard errno == EEXIST else { throw .system(operation: "create directory", errno: errno) }
            // An existing directory is kept (and merged into); anything else
            // an earlier entry left here is replaced.
            var info = stat()
            if name.withComponent(last, { fstatat(parent, $0, &info, AT_SYMLINK_NOFOLLOW) }) != 0 {
                throw .system(operation: "inspect existing entry", errno: errno)
            }
            if info.st_mode & S_IFMT != S_IFDIR {
                if name.withComponent(last, { unlinkat(parent, $0, 0) }) != 0 {
                    throw .system(operation: "remove existing entry", errno: errno)
                }
                if name.withComponent(last, { mkdirat(parent, $0, 0o700) }) != 0 {
                    throw .system(operation: "create directory", errno: errno)
                }
            }
        }
        directoryFixups[name.bytes] = meta
        guard archive_entry_xattr_count(entry) > 0 else { return }
        let fd = name.withComponent(last) { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { throw .system(operation: "open directory", errno: errno) }
        defer { close(fd) }
        try restoreXattrs(entry, on: fd)
    }

    private func regularFile(_ entry: OpaquePointer, from archive: OpaquePointer) throws(EntryFailure) {
        let meta = try metadata(entry, isDirectory: false)
        let size = UInt64(max(archive_entry_size(entry), 0))
        // Sizes are attacker numbers: an overflowing sum must be a refusal, not a trap.
        let (total, overflow) = apparentBytes.addingReportingOverflow(size)
        guard !overflow, total <= limits.maxLayerBytes else { throw .limit(.apparentBytes(limits.maxLayerBytes)) }
        apparentBytes = total
        let (_, fd) = try createReplacing(operation: "create file") { parent, name in
            openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        defer { close(fd) }
        let end = try copyData(from: archive, to: fd)
        // A sparse file may end in a hole: the data stops short of its size.
        if end < size && ftruncate(fd, off_t(size)) != 0 { throw .system(operation: "extend sparse file", errno: errno) }
        try restoreXattrs(entry, on: fd)
        try meta.apply(to: fd, chown: chown)
    }

    private func symlink(_ entry: OpaquePointer) throws(EntryFailure) {
        let meta = try metadata(entry, isDirectory: false)
        guard let linkTarget = archive_entry_symlink(entry) ?? archive_entry_symlink_utf8(entry),
              linkTarget.pointee != 0 else { throw .refused(.emptySymlinkTarget) }
        // The target is stored, never followed, so any text is safe; only its length is bounded.
        guard strlen(linkTarget) <= limits.maxSymlinkTargetBytes else {
            throw .limit(.symlinkTargetBytes(limits.maxSymlinkTargetBytes))
        }
        let (parent, _) = try createReplacing(operation: "create symlink") { parent, name in
            symlinkat(linkTarget, parent, name)
        }
        report.skippedXattrs += Int(archive_entry_xattr_count(entry))
        try name.withComponent(name.count - 1) { (last) throws(EntryFailure) in
            try meta.apply(in: parent, name: last, chown: chown, isSymlink: true)
        }
    }

    private func fifo(_ entry: OpaquePointer) throws(EntryFailure) {
        let meta = try metadata(entry, isDirectory: false)
        let (parent, _) = try createReplacing(operation: "create fifo") { parent, name in
            mkfifoat(parent, name, 0o600)
        }
        report.skippedXattrs += Int(archive_entry_xattr_count(entry))
        try name.withComponent(name.count - 1) { (last) throws(EntryFailure) in
            try meta.apply(in: parent, name: last, chown: chown, isSymlink: false)
        }
    }

    /// A hardlink to an entry earlier in this layer. Its target is confined
    /// exactly like a name; linkat without AT_SYMLINK_FOLLOW links a symlink
    /// itself, never what it points to.
    private func link(to rawTarget: UnsafePointer<CChar>) throws(EntryFailure) {
        let shown = UntrustedText.shown(bytes: bufferOf(rawTarget))
        func refused(_ reason: EntryRefusal) -> EntryFailure { .refused(.hardlinkTarget(target: shown, reason)) }
        do {
            try target.parse(bufferOf(rawTarget), limits: limits)
        } catch .refused(let reason) {
            throw refused(reason)
        }
        guard target.count > 0 else { throw refused(.isLayerRoot) }
        if skippedDevices.contains(target.bytes) {
            skippedDevices.insert(name.bytes)
            report.skippedDevices.append(name.display())
            return
        }
        // A link to itself leaves the file as it is.
        if target.sameComponents(as: name) { return }
        let targetParent = try tree.lookUpParent(of: target, refusal: refused)
        let targetLast = target.count - 1
        var info = stat()
        if target.withComponent(targetLast, { fstatat(targetParent.fd, $0, &info, AT_SYMLINK_NOFOLLOW) }) != 0 {
            throw errno == ENOENT ? refused(.missing) : .system(operation: "inspect hardlink target", errno: errno)
        }
        guard info.st_mode & S_IFMT != S_IFDIR else { throw refused(.isDirectory) }
        let targetFD = targetParent.fd
        _ = try target.withComponent(targetLast) { (old) throws(EntryFailure) in
            try createReplacing(operation: "create hardlink") { parent, name in
                linkat(targetFD, old, parent, name, 0)
            }
        }
    }

    // MARK: Shared steps

    func metadata(_ entry: OpaquePointer, isDirectory: Bool) throws(EntryFailure) -> EntryMetadata {
        var meta = try EntryMetadata(entry)
        if isDirectory {
            meta.permissions &= ~S_ISUID  // meaningless on a directory
        } else if !allowSetuid && meta.permissions & (S_ISUID | S_ISGID) != 0 {
            meta.permissions &= ~(S_ISUID | S_ISGID)
            report.droppedSetuid.append(name.display())
        }
        return meta
    }

    /// Makes the entry's last component with `make(parentFD, name)` (-1 and
    /// errno on failure). If an earlier entry of this layer already sits
    /// there, it is removed first, directories included, without following
    /// anything. Returns the parent fd and what `make` returned.
    func createReplacing(
        operation: String, _ make: (Int32, UnsafePointer<CChar>) -> Int32
    ) throws(EntryFailure) -> (parent: Int32, result: Int32) {
        // The parent chain cached by the tree holds only the name's parents,
        // never the last component, so removing it cannot stale the cache.
        let parent = try tree.parent(of: name, create: true)
        let last = name.count - 1
        var result = name.withComponent(last) { make(parent, $0) }
        if result < 0 && errno == EEXIST {
            let err = name.withComponent(last) { removeTree(in: parent, name: $0) }
            guard err == 0 else { throw .system(operation: "replace existing entry", errno: err) }
            forgetFixups(below: name.bytes)
            result = name.withComponent(last) { make(parent, $0) }
        }
        guard result >= 0 else { throw .system(operation: operation, errno: errno) }
        return (parent, result)
    }

    /// A removed directory takes its pending fixups with it.
    func forgetFixups(below key: [UInt8]) {
        guard !directoryFixups.isEmpty || !opaqueDirectories.isEmpty else { return }
        directoryFixups = directoryFixups.filter { !$0.key.starts(with: key) }
        opaqueDirectories = opaqueDirectories.filter { !$0.key.starts(with: key) }
    }
}

/// A C string's bytes, without copying.
func bufferOf(_ text: UnsafePointer<CChar>) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: UnsafeRawPointer(text).assumingMemoryBound(to: UInt8.self), count: strlen(text))
}

private func kindName(_ type: mode_t) -> String {
    switch type {
    case S_IFREG: return "regular file"
    case S_IFLNK: return "symlink"
    case S_IFCHR, S_IFBLK: return "device"
    case S_IFIFO: return "fifo"
    case 0: return "hardlink"
    default: return "non-directory"
    }
}
