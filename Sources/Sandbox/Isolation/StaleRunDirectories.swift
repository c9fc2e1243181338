import Glibc
import SandboxSupport

/// Run directories (`$DGRID_HOME/run/<sandbox id>`: the copy fallback's tree;
/// runs themselves mount nothing on the host, see RunRoot) that a dgrid killed with
/// SIGKILL, or a host that lost power, left behind. `SandboxRunner.run` removes
/// its own on the way out; these are swept when a runner starts, beside the
/// stale cgroups, by the same rule: the owner named in the id (its pid and
/// start time) is gone. Live neighbours' directories and names dgrid did not
/// make are kept.
enum StaleRunDirectories {
    /// Removes the dead owners' run directories; returns the names removed.
    /// Anything still mounted below one is detached first (never followed: the
    /// tree is removed through descriptors, and `removeTree` does not cross
    /// into another mount). Best effort: a directory that cannot go stays.
    @discardableResult
    static func remove(state: StateDirectory,
                       ownerIsAlive: (String) -> Bool = SandboxID.ownerIsAlive) -> [String] {
        // Missing, or refused by the state directory's checks: nothing of ours to sweep.
        guard let run = try? state.existingDirectory("run") else { return [] }
        let fd = open(run, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        let stale = entryNames(fd).filter { !ownerIsAlive($0) }
        guard !stale.isEmpty else { return [] }

        // The kernel's name for the run directory, as the mount table spells paths.
        let resolved = canonicalPath(of: fd) ?? run
        let mounts = MountTable.mountPoints()
        var removed: [String] = []
        for name in stale {
            let prefix = resolved + "/" + name
            // Deepest first, each line once: a stacked mount point comes off one layer per line.
            for mountPoint in mounts.filter({ $0 == prefix || $0.hasPrefix(prefix + "/") }).sorted(by: { $0.count > $1.count }) {
                _ = umount2(mountPoint, Int32(MNT_DETACH) | Int32(UMOUNT_NOFOLLOW))
            }
            if removeTree(in: fd, name: name) == 0 { removed.append(name) }
        }
        return removed
    }

    private static func entryNames(_ fd: Int32) -> [String] {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return [] }
        guard let stream = fdopendir(copy) else {
            close(copy)
            return []
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static func canonicalPath(of fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Mount points of this mount namespace, from /proc/self/mountinfo (field 5,
/// with the kernel's octal escapes for space, tab, newline and backslash undone).
enum MountTable {
    static func mountPoints(table: String = "/proc/self/mountinfo") -> [String] {
        let fd = open(table, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes.split(separator: UInt8(ascii: "\n")).compactMap { line in
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            return fields.count > 4 ? unescape(fields[4]) : nil
        }
    }

    static func unescape(_ field: ArraySlice<UInt8>) -> String {
        var result: [UInt8] = []
        var index = field.startIndex
        while index < field.endIndex {
            let byte = field[index]
            if byte == UInt8(ascii: "\\"), index + 3 < field.endIndex,
               let value = UInt8(String(decoding: field[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                result.append(value)
                index += 4
            } else {
                result.append(byte)
                index += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}
