import Glibc

/// Where dgrid keeps its state (DESIGN.md §5): `$DGRID_HOME`, else
/// `/var/lib/dgrid` as root, else `$XDG_DATA_HOME/dgrid` or `~/.local/share/dgrid`.
/// Every directory dgrid creates under it is 0700 (containerd CVE-2021-41103:
/// world-readable state let other users reach into image layers).
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
    public func directory(_ relative: String) throws(StateDirectoryError) -> String {
        let components = (path + "/" + relative).split(separator: "/")
        let full = "/" + components.joined(separator: "/")
        var existing = stat()
        // The usual case, one syscall: it exists already, a directory we own (lstat: not a symlink).
        if lstat(full, &existing) == 0, existing.st_mode & S_IFMT == S_IFDIR, existing.st_uid == geteuid() {
            return full
        }
        var current = ""
        for component in components {
            current += "/" + component
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw StateDirectoryError(path: current, errno: errno)
            }
        }
        return current
    }
}

public struct StateDirectoryError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let errno: Int32

    public var description: String {
        "cannot create state directory \(path): \(String(cString: strerror(errno))); set DGRID_HOME to a writable directory"
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
