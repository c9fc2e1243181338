import Glibc
import SandboxSupport

/// A user's subordinate id range from /etc/subuid or /etc/subgid ("name:start:count").
package struct SubordinateRange: Equatable, Sendable {
    package let start: UInt32
    package let count: UInt32

    package init(start: UInt32, count: UInt32) {
        self.start = start
        self.count = count
    }

    /// The first range for `uid` (matched by number or by login name); nil when none.
    package static func lookup(file: String, uid: UInt32, name: String?) -> SubordinateRange? {
        guard let text = readSmallFile(file) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0 else { continue }
            if fields[0] == "\(uid)" || (name != nil && fields[0] == name ?? "") {
                return SubordinateRange(start: start, count: count)
            }
        }
        return nil
    }
}

/// The id mapping a rootless sandbox gets. With subordinate ranges and the
/// setuid helpers installed, the task runs as a host uid of its own: inside
/// 0…count-1 are the subordinate ids, and the invoking user (who owns the
/// state directory and any token file) is not in the namespace at all
/// (docs/THREATS.md, T8). Without them, as the invoking user through a
/// one-id map.
package enum RootlessIDMapping: Sendable {
    case single
    case subordinate(uids: SubordinateRange, gids: SubordinateRange)

    package static let newuidmap = "/usr/bin/newuidmap"
    package static let newgidmap = "/usr/bin/newgidmap"

    package static func forCurrentUser(subuidFile: String = "/etc/subuid", subgidFile: String = "/etc/subgid") -> RootlessIDMapping {
        guard access(newuidmap, X_OK) == 0, access(newgidmap, X_OK) == 0 else { return .single }
        let uid = geteuid()
        let name = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
        guard let uids = SubordinateRange.lookup(file: subuidFile, uid: uid, name: name),
              let gids = SubordinateRange.lookup(file: subgidFile, uid: uid, name: name) else { return .single }
        return .subordinate(uids: uids, gids: gids)
    }

    /// Whether the task's uid/gid exist in this mapping.
    package func maps(_ user: UserID) -> Bool {
        switch self {
        case .single:
            return true
        case .subordinate(let uids, let gids):
            return user.uid < uids.count && user.gid < gids.count
        }
    }

    package var description: String {
        switch self {
        case .single: return "one-id mapping"
        case .subordinate(let u, let g): return "subordinate ids \(u.start)+\(u.count) / \(g.start)+\(g.count)"
        }
    }

    /// Supplementary groups other than the primary one: a one-id mapping
    /// cannot drop them (setgroups is denied to make the map writable).
    package static func supplementaryGroups() -> [UInt32] {
        let count = getgroups(0, nil)
        guard count > 0 else { return [] }
        var groups = [gid_t](repeating: 0, count: Int(count))
        let got = getgroups(count, &groups)
        guard got > 0 else { return [] }
        return groups.prefix(Int(got)).filter { $0 != getegid() }
    }
}

package func readSmallFile(_ path: String, limit: Int = 1 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    while bytes.count < limit {
        let n = read(fd, &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}
