#if canImport(Glibc)
import Glibc
#endif

/// Where the grid repository lives, classified once: the local transport needs a
/// different write path from the smart ones (docs/ARCHITECTURE.md §6: libgit2's local transport
/// force-updates refs, so the ledger never pushes there).
enum RemoteLocation: Equatable {
    /// A repository on this machine (file:// URL or plain path), absolute.
    case local(path: String)
    /// git://, http(s)://, ssh:// or scp-like `user@host:path`, handled by libgit2's
    /// smart transports.
    case smart(url: String)

    /// What libgit2 is given as the URL.
    var url: String {
        switch self {
        case .local(let path): path
        case .smart(let url): url
        }
    }

    /// For ssh:// and scp-like remotes, the server's port (22 unless the URL names
    /// one), which known_hosts needs and libgit2's certificate callback does not give;
    /// nil for other transports.
    var sshPort: Int? {
        guard case .smart(let url) = self else { return nil }
        guard let schemeEnd = url.firstRange(of: "://") else { return 22 }  // scp-like
        guard url[..<schemeEnd.lowerBound].lowercased() == "ssh" else { return nil }
        let authority = url[schemeEnd.upperBound...].prefix { $0 != "/" }
        var hostPort = authority.lastIndex(of: "@").map { authority[authority.index(after: $0)...] } ?? authority
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            hostPort = hostPort[hostPort.index(after: close)...]
        }
        guard let colon = hostPort.lastIndex(of: ":") else { return 22 }
        return Int(hostPort[hostPort.index(after: colon)...]) ?? 22
    }

    static func parse(_ remote: String) throws(LedgerError) -> RemoteLocation {
        func refuse(_ message: String, _ hint: String) -> LedgerError {
            LedgerError(.invalidRemote, operation: "open remote", remote: remote, message: message, hint: hint)
        }
        guard !remote.isEmpty, !remote.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
            throw refuse("the remote is empty or contains control characters", "give a URL or a path")
        }
        if let schemeEnd = remote.firstRange(of: "://") {
            let scheme = remote[..<schemeEnd.lowerBound].lowercased()
            let rest = remote[schemeEnd.upperBound...]
            let authority = rest.prefix { $0 != "/" }
            let userInfo = authority.lastIndex(of: "@").map { authority[..<$0] }
            switch scheme {
            case "file":
                guard rest.hasPrefix("/") else {
                    throw refuse("a file:// URL must name an absolute path", "write file:///path/to/grid.git")
                }
                return .local(path: try absolute(String(rest), remote: remote))
            case "http", "https", "git":
                if userInfo != nil {
                    throw refuse("the URL carries user information (a name or password before '@')",
                                 "remove it from the URL and supply the token through GIT_TOKEN or a token file (mode 0600)")
                }
                return .smart(url: remote)
            case "ssh":
                if let userInfo, userInfo.contains(":") {
                    throw refuse("the URL carries a password",
                                 "remove it; use an SSH key or the SSH agent")
                }
                return .smart(url: remote)
            default:
                throw refuse("unsupported scheme '\(scheme)'", "use file://, git://, http(s)://, ssh:// or a local path")
            }
        }
        // scp-like ssh: `[user@]host:path` with no slash before the colon; a local
        // path with a colon in it can be written as ./path or file://.
        if let colon = remote.firstIndex(of: ":"), !remote[..<colon].contains("/") {
            return .smart(url: remote)
        }
        return .local(path: try absolute(remote, remote: remote))
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
}
