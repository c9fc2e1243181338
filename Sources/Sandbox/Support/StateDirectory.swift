import Glibc

/// Where dgrid keeps its state (docs/ARCHITECTURE.md §5): `$DGRID_HOME`, else
/// `/var/lib/dgrid` as root, else `$XDG_DATA_HOME/dgrid` or `~/.local/share/dgrid`.
/// Every directory dgrid creates under it is 0700, and one it finds must be
/// this user's and closed to others, on a path nobody else can swap.
public struct StateDirectory: Sendable, Hashable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// `environment` replaces the process environment (tests); by default the
    /// three variables are read with getenv, not by copying the whole environment.
    public static func forThisUser(environment: [String: String]? = nil) -> StateDirectory {
        let variable = { (name: String) -> String? in
            if let environment { return environment[name] }
            return getenv(name).map { String(cString: $0) }
        }
        if let home = variable("DGRID_HOME"), !home.isEmpty { return StateDirectory(path: home) }
        if geteuid() == 0 { return StateDirectory(path: "/var/lib/dgrid") }
        if let xdg = variable("XDG_DATA_HOME"), xdg.hasPrefix("/") { return StateDirectory(path: xdg + "/dgrid") }
        let home = variable("HOME") ?? getpwuid(geteuid()).flatMap { $0.pointee.pw_dir.map { String(cString: $0) } } ?? "/tmp"
        return StateDirectory(path: home + "/.local/share/dgrid")
    }

    /// `path/<relative>`, created (with parents) as 0700 directories when missing.
    /// Refused, with what to do, when the walk finds a symlink, another user's
    /// directory or one others can write (`TrustedDirectoryWalk` has the rules).
    public func directory(_ relative: String) throws(StateDirectoryError) -> String {
        guard let found = try walk(to: relative, create: true) else {
            throw StateDirectoryError(path: path + "/" + relative, errno: ENOENT)
        }
        return found
    }

    /// `path/<relative>` when it exists and passes the same checks; nil when it
    /// (or a parent) is missing. Creates nothing: for sweeping what may be there.
    package func existingDirectory(_ relative: String) throws(StateDirectoryError) -> String? {
        try walk(to: relative, create: false)
    }

    private func walk(to relative: String, create: Bool) throws(StateDirectoryError) -> String? {
        let names = relative.split(separator: "/").map(String.init)
        // Checked before anything is made: a relative name stays inside.
        if let bad = names.first(where: { $0 == "." || $0 == ".." }) {
            throw StateDirectoryError(path: path + "/" + relative, problem: .invalidName(bad))
        }
        var root = path
        if !root.hasPrefix("/") {
            // Relative to where dgrid was started, as the shell meant it.
            guard let cwd = getcwd(nil, 0) else { throw StateDirectoryError(path: path, errno: errno) }
            root = String(cString: cwd) + "/" + root
            free(cwd)
        }
        var parents = root.split(separator: "/").map(String.init)
        guard let last = parents.popLast() else {
            throw StateDirectoryError(path: path, problem: .invalidName("/"))
        }
        let walk = try TrustedDirectoryWalk()
        guard try walk.enterParents("/" + parents.joined(separator: "/"), create: create) else { return nil }
        var full = "/" + (parents + [last]).joined(separator: "/")
        guard try walk.enterOwn(last, path: full, create: create) else { return nil }
        for name in names {
            full += "/" + name
            guard try walk.enterOwn(name, path: full, create: create) else { return nil }
        }
        return full
    }
}

/// The process environment as a dictionary, read once.
public enum ProcessEnvironment {
    public static var current: [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return result
    }
}
