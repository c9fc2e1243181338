import CShims
import Glibc
import SandboxSupport

/// `subordinate_ids`: the host ids a sandbox's user namespace maps
/// (docs/THREATS.md T4, T8). As root, the pool each run leases a 65,536-id
/// range from (`HostIDPool`), which must not overlap ranges /etc/subuid gives
/// users. Rootless (or for `--user NAME`), that user's own ranges and the
/// setuid `newuidmap`/`newgidmap` that map them; without them a rootless
/// sandbox maps the user's one id and tasks run as it.
public enum SubordinateIDCheck {
    /// Whose ranges to check: nil for this process's user.
    public static func check(user name: String?) -> HostCheck {
        let target: (uid: UInt32, name: String?)?
        if let name {
            guard let entry = getpwnam(name) else {
                return .fail(.subordinateIDs, "no user \(UntrustedText.quoted(name)) on this host", fix: "give --user an existing login name")
            }
            target = (entry.pointee.pw_uid, name)
        } else if geteuid() != 0 {
            let uid = geteuid()
            target = (uid, getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } })
        } else {
            target = nil
        }
        let ownStatus = readSmallFile("/proc/self/status") ?? ""
        let noNewPrivs = ownStatus.split(separator: "\n").contains { $0.hasPrefix("NoNewPrivs:") && $0.hasSuffix("1") }
        return check(user: target, paths: .host, helpers: Helpers.installed(), noNewPrivs: name == nil && noNewPrivs)
    }

    /// Whether `newuidmap` and `newgidmap` can map ranges: present, and setuid root or with file capabilities.
    package struct Helpers: Sendable, Equatable {
        package var usable: Bool
        package var problem: String?

        package init(usable: Bool, problem: String?) {
            self.usable = usable
            self.problem = problem
        }

        static func installed() -> Helpers {
            for path in [RootlessIDMapping.newuidmap, RootlessIDMapping.newgidmap] {
                var info = stat()
                guard stat(path, &info) == 0 else { return Helpers(usable: false, problem: "\(path) is missing") }
                let setuidRoot = info.st_uid == 0 && info.st_mode & S_ISUID != 0
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                let capabilities = fd >= 0 && dgrid_unpack_fgetxattr(fd, "security.capability", nil, 0) > 0
                if fd >= 0 { close(fd) }
                if !setuidRoot && !capabilities {
                    return Helpers(usable: false, problem: "\(path) is neither setuid root nor given capabilities")
                }
            }
            return Helpers(usable: true, problem: nil)
        }
    }

    package static func check(user: (uid: UInt32, name: String?)?, paths: HostPaths, helpers: Helpers, noNewPrivs: Bool) -> HostCheck {
        let subuid = paths.etc + "/subuid", subgid = paths.etc + "/subgid"
        let entries = SubordinateEntries(uids: SubordinateEntries.read(subuid), gids: SubordinateEntries.read(subgid))
        guard let user else { return rootPool(entries, subuid: subuid, subgid: subgid) }
        let who = user.name ?? "uid \(user.uid)"
        let fix = "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \(user.name ?? "USER") (a range no other user has)"
        guard let uids = SubordinateRange.lookup(file: subuid, uid: user.uid, name: user.name),
              let gids = SubordinateRange.lookup(file: subgid, uid: user.uid, name: user.name) else {
            let missing = SubordinateRange.lookup(file: subuid, uid: user.uid, name: user.name) == nil ? subuid : subgid
            return .warn(.subordinateIDs, "\(who) has no range in \(missing): rootless sandboxes map only \(who)'s own id, so tasks run as it and image files of other owners show as nobody",
                         fix: fix)
        }
        for (kind, range, list) in [("uid", uids, entries.uids), ("gid", gids, entries.gids)] {
            if let other = list.first(where: { $0.owner != user.name && $0.owner != "\(user.uid)" && $0.range.overlaps(range) }) {
                return .fail(.subordinateIDs, "\(who)'s subordinate \(kind)s \(range.start)+\(range.count) overlap \(UntrustedText.quoted(other.owner))'s \(other.range.start)+\(other.range.count): tasks of both would share host ids",
                             fix: "give each user a range of its own in /etc/subuid and /etc/subgid")
            }
        }
        if !helpers.usable {
            return .warn(.subordinateIDs, "\(who) has subordinate ids, but \(helpers.problem ?? "newuidmap cannot map them"): rootless sandboxes map only \(who)'s own id",
                         fix: "apt-get install uidmap (newuidmap and newgidmap, setuid root)")
        }
        if noNewPrivs {
            return .warn(.subordinateIDs, "this process runs with no_new_privs set, so the setuid newuidmap cannot map \(who)'s ranges",
                         fix: "start the worker without NoNewPrivileges=yes (systemd) or another no_new_privs wrapper")
        }
        let smallest = min(uids.count, gids.count)
        if smallest < 65_536 {
            return .warn(.subordinateIDs, "\(who)'s ranges hold \(smallest) ids: image files owned by ids from \(smallest) up show as nobody, and tasks cannot run as them",
                         fix: fix)
        }
        return .pass(.subordinateIDs, "\(who): uids \(uids.start)+\(uids.count), gids \(gids.start)+\(gids.count), newuidmap and newgidmap usable")
    }

    private static func rootPool(_ entries: SubordinateEntries, subuid: String, subgid: String) -> HostCheck {
        let pool = HostIDPool.forThisHost(subuidFile: subuid, subgidFile: subgid)
        let size = UInt64(pool.ranges) * UInt64(HostIDPool.rangeSize)
        let uidPool = (UInt64(pool.uidStart), size), gidPool = (UInt64(pool.gidStart), size)
        let own = entries.uids.contains { $0.owner == "dgrid" }
        let source = own ? "the dgrid entry of \(subuid)" : "the default (no dgrid entry in \(subuid))"
        if let dgrid = entries.uids.first(where: { $0.owner == "dgrid" }), dgrid.range.count < HostIDPool.rangeSize {
            return .warn(.subordinateIDs, "the dgrid entry of \(subuid) holds \(dgrid.range.count) ids, less than one range of \(HostIDPool.rangeSize): it is ignored",
                         fix: "make it dgrid:START:COUNT with COUNT a multiple of 65536, in /etc/subuid and /etc/subgid")
        }
        for (kind, (start, count), list) in [("uid", uidPool, entries.uids), ("gid", gidPool, entries.gids)] {
            if let other = list.first(where: { $0.owner != "dgrid" && $0.range.overlaps(start: start, count: count) }) {
                return .warn(.subordinateIDs, "root sandboxes lease \(kind)s \(start)+\(count) (\(source)), which overlap \(UntrustedText.quoted(other.owner))'s subordinate \(kind)s \(other.range.start)+\(other.range.count)",
                             fix: "give dgrid a range of its own: dgrid:START:COUNT (a multiple of 65536) in /etc/subuid and /etc/subgid")
            }
        }
        return .pass(.subordinateIDs, "root: each sandbox leases one of \(pool.ranges) ranges of \(HostIDPool.rangeSize) host ids from \(pool.uidStart) (\(source)), apart from every user's subordinate ids; rootless users: pass --user NAME")
    }
}

/// Every `name:start:count` line of /etc/subuid and /etc/subgid.
struct SubordinateEntries {
    struct Entry {
        let owner: String
        let range: SubordinateRange
    }

    let uids: [Entry]
    let gids: [Entry]

    static func read(_ path: String) -> [Entry] {
        (readSmallFile(path) ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0 else { return nil }
            return Entry(owner: String(fields[0]), range: SubordinateRange(start: start, count: count))
        }
    }
}

extension SubordinateRange {
    func overlaps(_ other: SubordinateRange) -> Bool {
        overlaps(start: UInt64(other.start), count: UInt64(other.count))
    }

    func overlaps(start: UInt64, count: UInt64) -> Bool {
        UInt64(self.start) < start + count && start < UInt64(self.start) + UInt64(self.count)
    }
}
