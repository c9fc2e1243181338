/// An SSH grid's server and repository, from any of Git's spellings
/// (`RemoteLocation.parse`). The host key check, the credentials and libgit2 all
/// take host, port and user from here, so they cannot disagree about which
/// server is meant (docs/ARCHITECTURE.md §6, "Remotes").
public struct SSHEndpoint: Equatable, Sendable {
    /// The login name, when the remote names one (libgit2 then asks for "git").
    public let user: String?
    /// Host name or address, without brackets.
    public let host: String
    public let port: Int
    /// The repository path as the server's git-upload-pack receives it.
    public let path: String
    /// What libgit2 is given: the remote as written when libgit2 reads it the
    /// same way, else an ssh:// URL built from the parts above.
    let url: String

    /// `host` as known_hosts and messages write it: `[host]:port` off port 22.
    public var shownHost: String { port == 22 ? host : "[\(host)]:\(port)" }

    typealias Refuse = (_ message: String, _ hint: String) -> LedgerError

    /// An `ssh://`, `ssh+git://` or `git+ssh://` URL: `authority` is what lies
    /// between `://` and the path.
    init(url: String, authority: Substring, path: Substring, refuse: Refuse) throws(LedgerError) {
        var hostPort = authority
        var user: String?
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if userInfo.contains(":") {
                throw refuse("the URL carries a password", "remove it; use an SSH key or the SSH agent")
            }
            user = String(userInfo)
            hostPort = authority[authority.index(after: at)...]
        }
        var host: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw refuse("the host's '[' is not closed", "write IPv6 addresses as ssh://[::1]:2222/path")
            }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw refuse("unexpected text after ']'", "write ssh://[::1]:2222/path") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = hostPort
        }
        var port = 22
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value), portText.allSatisfy(\.isASCII) else {
                throw refuse("'\(portText)' is not a port", "write the port as a number from 1 to 65535, e.g. ssh://host:2222/path")
            }
            port = value
        }
        try self.init(user: user, host: String(host), port: port, path: String(path), refuse: refuse)
        // libgit2 reads these URLs exactly as above (its URL parser), but a
        // canonical spelling leaves no room for a difference between the two.
        self = SSHEndpoint(user: self.user, host: self.host, port: self.port, path: self.path,
                           url: Self.canonicalURL(user: self.user, host: self.host, port: self.port, path: self.path))
    }

    /// scp-like `[user@]host:path`, `[user@host:port]:path` (Git's bracket form
    /// for a port) or `[user@][v6]:path`.
    init(scpLike remote: String, refuse: Refuse) throws(LedgerError) {
        var rest = Substring(remote)
        var user: String?
        var host: Substring
        var port = 22
        var bracketedV6 = false
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]"), rest[close...].hasPrefix("]:") {
            let inside = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(close, offsetBy: 2)...]
            if inside.filter({ $0 == ":" }).count > 1 && !inside.contains("@") {
                host = inside  // [v6]:path
                bracketedV6 = true
            } else {
                // [user@host:port]:path
                var hostPort = inside
                if let at = inside.lastIndex(of: "@") {
                    user = String(inside[..<at])
                    hostPort = inside[inside.index(after: at)...]
                }
                guard let colon = hostPort.lastIndex(of: ":"), let value = Int(hostPort[hostPort.index(after: colon)...]),
                      (1...65535).contains(value) else {
                    throw refuse("'[\(inside)]' is neither an IPv6 address nor user@host:port",
                                 "write [git@host:2222]:path, [::1]:path or ssh://git@host:2222/path")
                }
                host = hostPort[..<colon]
                port = value
            }
        } else {
            // `user@` ends at the first '@' before the first ':' (Git's rule).
            if let at = rest.firstIndex(of: "@"), !rest[..<at].contains(":") {
                user = String(rest[..<at])
                rest = rest[rest.index(after: at)...]
            }
            if rest.hasPrefix("["), let close = rest.firstIndex(of: "]"), rest[close...].hasPrefix("]:") {
                // user@[v6]:path
                host = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(close, offsetBy: 2)...]
                bracketedV6 = true
            } else {
                guard let colon = rest.firstIndex(of: ":") else { throw refuse("no ':' before the path", "write user@host:path") }
                host = rest[..<colon]
                rest = rest[rest.index(after: colon)...]
            }
        }
        try self.init(user: user, host: String(host), port: port, path: String(rest), refuse: refuse)
        if bracketedV6 {
            // libgit2 1.5 keeps the brackets in an scp-like IPv6 host and cannot
            // resolve it: give it the URL form, which means the same for a path
            // from the root or from a home directory (`~`).
            guard path.hasPrefix("/") || path.hasPrefix("~") else {
                throw refuse("an scp-like IPv6 remote with a relative path cannot be reached by libgit2",
                             "write ssh://[\(host)]/absolute/path or [\(host)]:~/path")
            }
            let urlPath = path.hasPrefix("/") ? path : "/" + path
            self = SSHEndpoint(user: self.user, host: self.host, port: port, path: path,
                               url: Self.canonicalURL(user: self.user, host: self.host, port: port, path: urlPath))
        } else {
            // libgit2's scp parser reads these forms as above.
            self = SSHEndpoint(user: self.user, host: self.host, port: port, path: path, url: remote)
        }
    }

    private init(user: String?, host: String, port: Int, path: String, url: String) {
        self.user = user
        self.host = host
        self.port = port
        self.path = path
        self.url = url
    }

    /// Checks the parts every spelling shares; `url` is the remote as written.
    private init(user: String?, host: String, port: Int, path: String, refuse: Refuse) throws(LedgerError) {
        if let user {
            guard !user.isEmpty, user.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw refuse("'\(user)' is not a login name", "use letters, digits, '.', '_' and '-' before the '@'")
            }
        }
        // Percent escapes would be decoded by libgit2's URL parser and not by
        // the host key check: only plain host names and addresses.
        let isV6 = host.contains(":")
        guard !host.isEmpty, host.allSatisfy({ character in
            character.isASCII && (character.isLetter || character.isNumber || "-._".contains(character) || (isV6 && character == ":"))
        }) else {
            throw refuse("'\(host)' is not a host name or address", "write a host name, an IPv4 address or [an IPv6 address]")
        }
        guard !path.isEmpty, path != "/" else {
            throw refuse("the remote names no repository", "add the repository's path, e.g. git@host:grid.git")
        }
        // libgit2 sends the path to the server inside single quotes, unescaped.
        guard !path.contains("'"), !path.contains("\\") else {
            throw refuse("the repository path contains a quote or backslash", "rename the repository")
        }
        self.init(user: user, host: host, port: port, path: path, url: "")
    }

    /// `ssh://[user@]host:port/path`, with brackets around an IPv6 host.
    private static func canonicalURL(user: String?, host: String, port: Int, path: String) -> String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "ssh://" + (user.map { $0 + "@" } ?? "") + shownHost + ":\(port)" + path
    }
}
