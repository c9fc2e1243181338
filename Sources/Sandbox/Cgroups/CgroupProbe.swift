import SandboxSupport
/// A cgroup filesystem mount, from one line of `/proc/self/mountinfo`.
struct CgroupMount: Sendable, Equatable {
    var mountPoint: String
    /// The part of the hierarchy the mount shows: "/" normally, deeper for bind
    /// mounts and inside cgroup namespaces.
    var root: String
    var version: CgroupVersion
    /// v1: the controllers named in the super options ("cpu", "cpuacct" when
    /// co-mounted). v2: empty; the group's `cgroup.controllers` says.
    var controllers: Set<String>
}

/// One line of `/proc/self/cgroup`: where this process sits in one hierarchy.
struct CgroupMembership: Sendable, Equatable {
    /// 0 for the unified (v2) hierarchy.
    var hierarchyID: Int
    var controllers: Set<String>
    var path: String
}

/// Parses the two proc files that say which cgroup hierarchies exist and where
/// this process is in each. Pure text in, values out, so tests feed samples.
enum CgroupProbe {
    /// Super options of v1 mounts that are flags, not controllers.
    private static let v1Flags: Set<String> = ["rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods"]

    static func parseMountinfo(_ text: String) -> [CgroupMount] {
        var mounts: [CgroupMount] = []
        // Bytes, not Characters: a host has dozens of mounts and only a few
        // are cgroups, and String's Unicode-aware split and `contains` were
        // ~4% of a start's CPU in perf.
        let bytes = Array(text.utf8)
        let marker = Array(" - cgroup".utf8)
        for line in bytes.split(separator: UInt8(ascii: "\n")) where Self.contains(line, marker) {
            // id parent major:minor root mount-point options [optional...] - fstype source super-options
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count >= 10,
                  let dash = fields[6...].firstIndex(where: { $0.count == 1 && $0.first == UInt8(ascii: "-") }),
                  dash + 3 < fields.count else { continue }
            let version: CgroupVersion
            switch String(decoding: fields[dash + 1], as: UTF8.self) {
            case "cgroup": version = .v1
            case "cgroup2": version = .v2
            default: continue
            }
            var controllers: Set<String> = []
            if version == .v1 {
                for option in fields[dash + 3].split(separator: UInt8(ascii: ",")) where !option.contains(UInt8(ascii: "=")) {
                    let name = String(decoding: option, as: UTF8.self)
                    if !v1Flags.contains(name) { controllers.insert(name) }
                }
            }
            mounts.append(CgroupMount(mountPoint: unescape(Substring(String(decoding: fields[4], as: UTF8.self))),
                                      root: unescape(Substring(String(decoding: fields[3], as: UTF8.self))),
                                      version: version, controllers: controllers))
        }
        return mounts
    }

    private static func contains(_ line: ArraySlice<UInt8>, _ marker: [UInt8]) -> Bool {
        guard line.count >= marker.count else { return false }
        var start = line.startIndex
        while start + marker.count <= line.endIndex {
            if line[start] == marker[0] && line[start..<(start + marker.count)].elementsEqual(marker) { return true }
            start += 1
        }
        return false
    }

    static func parseMemberships(_ text: String) -> [CgroupMembership] {
        text.split(separator: "\n").compactMap { line in
            // The path may itself contain ':', so split twice only.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let id = Int(parts[0]) else { return nil }
            let controllers = Set(parts[1].split(separator: ",").map(String.init))
            return CgroupMembership(hierarchyID: id, controllers: controllers, path: String(parts[2]))
        }
    }

    /// The directory of the group at `path` as seen through `mount`, or nil when the
    /// mount does not show it (a bind mount of another subtree, or "/.." outside a namespace).
    static func directory(of path: String, in mount: CgroupMount) -> String? {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else { return nil }
        let relative: Substring
        if mount.root == "/" {
            relative = path[...]
        } else if path == mount.root {
            relative = ""
        } else if path.hasPrefix(mount.root + "/") {
            relative = path.dropFirst(mount.root.count)
        } else {
            return nil
        }
        let base = mount.mountPoint.hasSuffix("/") ? String(mount.mountPoint.dropLast()) : mount.mountPoint
        return relative == "/" ? base : base + relative
    }

    /// mountinfo writes space, tab, newline and backslash in paths as \ooo octal.
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 4 <= utf8.count,
               let value = UInt8(String(decoding: utf8[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
