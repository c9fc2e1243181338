#if canImport(Glibc)
import Glibc
#endif

/// Where the grid repository lives and which transport reaches it, decided once
/// (docs/ARCHITECTURE.md §6, "Remotes"). Everything that depends on the transport
/// — the write path (libgit2's local transport force-updates refs, so the ledger
/// never pushes there), which credentials may be offered, whether and where an SSH
/// host key is checked — reads this value; nothing re-inspects the URL string.
///
/// The spellings follow Git's own rules, which libgit2 1.5 shares:
/// - `file:///path` or a path (absolute, or relative to the working directory);
///   a path with a colon is local when a `/` comes before the first colon
///   (`./a:b`, `/srv/a:b`), as Git decides;
/// - `git://`, `http://`, `https://`;
/// - SSH as `ssh://`, `ssh+git://` or `git+ssh://` URLs (scheme case-insensitive,
///   `[v6]` hosts, ports), or scp-like `[user@]host:path`, `[user@host:port]:path`
///   and `[user@][v6]:path`.
public enum RemoteLocation: Equatable, Sendable {
    /// A repository on this machine, by absolute path.
    case local(path: String)
    /// `git://`: no authentication at all.
    case git(url: String)
    /// `http://` or `https://`: the only transport a token is offered to.
    case http(url: String)
    /// SSH in any spelling: key or agent authentication, host key checked.
    case ssh(SSHEndpoint)

    /// The transport alone, for decisions that need nothing else.
    public enum Transport: String, Sendable {
        case local, git, http, ssh
    }

    public var transport: Transport {
        switch self {
        case .local: .local
        case .git: .git
        case .http: .http
        case .ssh: .ssh
        }
    }

    /// What libgit2 is given as the URL. A local path goes as a `file://` URL:
    /// given a bare path with a colon in it, libgit2 would pick its SSH transport.
    var url: String {
        switch self {
        case .local(let path): "file://" + Self.percentEncodedPath(path)
        case .git(let url), .http(let url): url
        case .ssh(let endpoint): endpoint.url
        }
    }

    /// Whether `credentials` may be offered to this remote: a token only to
    /// http(s), an SSH key or the agent only to SSH (docs/THREATS.md, "Secrets").
    /// libgit2 would hand a token to an SSH server that offers password
    /// authentication, so the rule is kept here, not left to the server's offer.
    public func admits(_ credentials: GitCredentials) -> Bool {
        switch (credentials, transport) {
        case (.none, _): true
        case (.token, .http): true
        case (.sshKey, .ssh), (.sshAgent, .ssh): true
        default: false
        }
    }

    /// The credentials this remote gets: the token for http(s), `ssh()` for SSH
    /// (called only then: it looks for key files), nothing for the others.
    public func credentials(token: GitCredentials, ssh: () -> GitCredentials) -> GitCredentials {
        switch transport {
        case .http: token
        case .ssh: ssh()
        case .local, .git: .none
        }
    }

    public static func parse(_ remote: String) throws(LedgerError) -> RemoteLocation {
        func refuse(_ message: String, _ hint: String) -> LedgerError {
            LedgerError(.invalidRemote, operation: "open remote", remote: remote, message: message, hint: hint)
        }
        guard !remote.isEmpty, !remote.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
            throw refuse("the remote is empty or contains control characters", "give a URL or a path")
        }
        if let (scheme, rest) = urlParts(remote) {
            let authority = rest.prefix { $0 != "/" }
            let userInfo = authority.lastIndex(of: "@").map { authority[..<$0] }
            switch scheme {
            case "file":
                guard rest.hasPrefix("/") else {
                    throw refuse("a file:// URL must name an absolute path", "write file:///path/to/grid.git")
                }
                return .local(path: try percentDecoded(rest, remote: remote))
            case "http", "https", "git":
                if userInfo != nil {
                    throw refuse("the URL carries user information (a name or password before '@')",
                                 "remove it from the URL and supply the token through GIT_TOKEN or a token file (mode 0600)")
                }
                guard !authority.isEmpty else { throw refuse("the URL names no host", "write \(scheme)://HOST/PATH") }
                return scheme == "git" ? .git(url: remote) : .http(url: remote)
            case "ssh", "ssh+git", "git+ssh":
                return .ssh(try SSHEndpoint(url: remote, authority: authority, path: rest.dropFirst(authority.count),
                                            refuse: refuse))
            default:
                throw refuse("unsupported scheme '\(scheme)'",
                             "use file://, git://, http(s)://, ssh:// (or ssh+git://, git+ssh://), user@host:path or a local path")
            }
        }
        // scp-like SSH, as Git decides: a colon with no slash before it (a path
        // with a colon in it is written ./a:b or file://). A bracketed start is
        // always scp-like: `[v6]:path`, `[user@host:port]:path`.
        if let colon = remote.firstIndex(of: ":"), remote.hasPrefix("[") || !remote[..<colon].contains("/") {
            return .ssh(try SSHEndpoint(scpLike: remote, refuse: refuse))
        }
        return .local(path: try absolute(remote, remote: remote))
    }

    /// `scheme` (lowercased) and what follows `://`, when `remote` is a URL as
    /// libgit2 tells (letters, digits, `+ - .` up to `://`).
    private static func urlParts(_ remote: String) -> (scheme: String, rest: Substring)? {
        guard let schemeEnd = remote.firstRange(of: "://") else { return nil }
        let scheme = remote[..<schemeEnd.lowerBound]
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }) else {
            return nil
        }
        return (scheme.lowercased(), remote[schemeEnd.upperBound...])
    }

    /// `path` made absolute against the working directory, so a later chdir changes nothing.
    private static func absolute(_ path: String, remote: String) throws(LedgerError) -> String {
        if path.hasPrefix("/") { return path }
        guard let cwd = getcwd(nil, 0) else {
            throw LedgerError(.invalidRemote, operation: "open remote", remote: remote,
                              message: "cannot resolve a relative path: \(String(cString: strerror(errno)))",
                              hint: "give an absolute path")
        }
        defer { free(cwd) }
        return String(cString: cwd) + "/" + path
    }

    /// A file URL's path with `%XX` decoded, as libgit2 decodes it.
    private static func percentDecoded(_ text: Substring, remote: String) throws(LedgerError) -> String {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        while index < text.utf8.endIndex {
            let byte = text.utf8[index]
            if byte == UInt8(ascii: "%") {
                let digits = text.utf8[text.utf8.index(after: index)...].prefix(2)
                guard digits.count == 2, let value = UInt8(String(decoding: digits, as: UTF8.self), radix: 16), value != 0 else {
                    throw LedgerError(.invalidRemote, operation: "open remote", remote: remote,
                                      message: "a '%' in the file:// URL is not followed by two hex digits",
                                      hint: "write %25 for a '%' in the path, or give the path itself")
                }
                bytes.append(value)
                index = text.utf8.index(index, offsetBy: 3)
            } else {
                bytes.append(byte)
                index = text.utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Every byte but unreserved ones and `/` as `%XX`, so libgit2's decoding gives the path back.
    static func percentEncodedPath(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if byte < 0x80, character.isLetter || character.isNumber || "/-._~".contains(character) {
                out.append(character)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}
