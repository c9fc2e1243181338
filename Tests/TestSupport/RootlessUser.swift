import Foundation
import Glibc

/// A real unprivileged host account that a test creates and removes again
/// (docs/THREATS.md, T8): a home of its own and the subordinate uid and gid
/// ranges useradd gives it (SUB_UID_COUNT in /etc/login.defs), no
/// supplementary groups, no cgroup delegated, nothing else. Commands run as it
/// through setpriv with the environment a login would give (HOME, PATH), so
/// dgrid finds its state under the user's own home by default.
public final class RootlessUser: @unchecked Sendable {
    public let name: String
    public let uid: UInt32
    public let gid: UInt32
    public let home: String
    /// The first host id of the user's /etc/subuid range.
    public let subordinateStart: UInt32
    /// The first host id of the user's /etc/subgid range.
    public let subordinateGIDStart: UInt32

    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Creates `dgrl<random>`; call `remove()` when done (a `defer` right after).
    public init() throws {
        let name = "dgrl" + UUID().uuidString.prefix(8).lowercased()
        let added = try ProcessRunner.run("/usr/sbin/useradd", ["--create-home", "--user-group", "--shell", "/bin/sh", name])
        guard added.status == 0, let entry = getpwnam(name) else {
            throw SetupError(description: "useradd \(name) failed: \(added.stderr)")
        }
        self.name = name
        uid = entry.pointee.pw_uid
        gid = entry.pointee.pw_gid
        home = String(cString: entry.pointee.pw_dir)
        func start(_ file: String) -> UInt32? {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { UInt32($0.split(separator: ":")[1]) }
        }
        guard let subuid = start("/etc/subuid"), let subgid = start("/etc/subgid") else {
            _ = try? ProcessRunner.run("/usr/sbin/userdel", ["--remove", name])
            throw SetupError(description: "useradd gave \(name) no /etc/subuid or /etc/subgid range (SUB_UID_COUNT in /etc/login.defs)")
        }
        subordinateStart = subuid
        subordinateGIDStart = subgid
    }

    /// Removes the account, its home (and everything dgrid kept there) and its
    /// subordinate ranges.
    public func remove() {
        _ = try? ProcessRunner.run("/usr/sbin/userdel", ["--remove", name])
    }

    /// Runs `executable` as this user: real and effective ids the user's, no
    /// groups but its own, no capabilities, a login's environment plus `environment`.
    public func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        let variables = ["HOME": home, "PATH": "/usr/local/bin:/usr/bin:/bin", "USER": name, "LANG": "C.UTF-8"]
            .merging(environment) { $1 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try ProcessRunner.run("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--",
                                                          "/usr/bin/env", "-i"] + variables + [executable] + arguments)
    }

    /// Paths below `roots` owned by this user: where it wrote outside its home.
    /// SwiftPM build directories (`.build`, root's, closed to others) are not
    /// walked: a clone under /tmp puts ~400,000 files there, which made each
    /// call take 1.5 s, and the user can create nothing in them.
    public func filesOwned(below roots: [String]) throws -> [String] {
        let found = try ProcessRunner.run("/usr/bin/find", roots + [
            "-xdev", "(", "-type", "d", "-name", ".build", "-uid", "0", "!", "-perm", "-o+w", "-prune", ")",
            "-o", "-uid", "\(uid)", "-print",
        ])
        return found.stdout.split(separator: "\n").map(String.init)
    }
}
