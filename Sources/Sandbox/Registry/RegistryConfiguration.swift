import SandboxImages
import SandboxSupport
import FoundationEssentials
import Glibc

/// A user name and password for one registry. Never printed: `description`
/// is redacted, and the client redacts both from any text a registry sends.
public struct RegistryCredentials: Sendable, Equatable, CustomStringConvertible {
    public let username: String
    public let password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "credentials for \(UntrustedText.shown(username, limit: 60)) (password redacted)" }

    /// `Basic base64(user:password)`.
    var basicAuthorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }
}

/// Registry settings in a Docker-style `config.json`:
///
/// ```
/// { "auths": { "registry.example:5000": { "auth": "base64(user:password)" } },
///   "insecure-registries": [ "127.0.0.1:5000" ] }
/// ```
///
/// `auths` keys may also be URLs (`https://index.docker.io/v1/`); an entry may
/// give `username` and `password` instead of `auth`. Where it is read from:
/// `--registry-config`, else `$DGRID_REGISTRY_CONFIG`, else
/// `$DGRID_HOME/registry.json`, else `~/.docker/config.json`; the first two
/// must exist, the others may be absent (no credentials, TLS everywhere).
public struct RegistryConfiguration: Sendable, Equatable {
    /// The file it came from (nil: none found).
    public let path: String?
    private let auths: [String: RegistryCredentials]
    public let insecureRegistries: Set<String>

    public static let environmentVariable = "DGRID_REGISTRY_CONFIG"
    static let sizeLimit = 1 << 20

    public init(path: String? = nil, auths: [String: RegistryCredentials] = [:], insecureRegistries: Set<String> = []) {
        self.path = path
        var normalized: [String: RegistryCredentials] = [:]
        for (key, value) in auths { normalized[Self.normalize(key)] = value }
        self.auths = normalized
        self.insecureRegistries = Set(insecureRegistries.map(Self.normalize))
    }

    /// Reads the configuration from the first place that applies (see the type).
    public static func load(explicitPath: String?, environment: [String: String] = ProcessEnvironment.current,
                            state: StateDirectory) throws(RegistryError) -> RegistryConfiguration {
        if let explicitPath, !explicitPath.isEmpty { return try read(explicitPath) }
        if let path = environment[environmentVariable], !path.isEmpty { return try read(path) }
        let candidates = [state.path + "/registry.json"] + (environment["HOME"].map { [$0 + "/.docker/config.json"] } ?? [])
        for path in candidates where FileIO.exists(path) {
            return try read(path)
        }
        return RegistryConfiguration()
    }

    /// Parses one file.
    public static func read(_ path: String) throws(RegistryError) -> RegistryConfiguration {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readFile(path, limit: sizeLimit, what: "registry configuration")
        } catch {
            if case .system(_, _, let err) = error { throw .config(path: path, reason: errnoText(err)) }
            throw .config(path: path, reason: error.description)
        }
        let configuration = try parse(bytes, path: path)
        if !configuration.auths.isEmpty { try checkPrivate(path) }
        return configuration
    }

    /// A file with passwords must be the user's own and 0600, as ssh insists
    /// for keys: another local user reading it could pull as this one.
    static func checkPrivate(_ path: String) throws(RegistryError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .config(path: path, reason: errnoText(errno)) }
        if info.st_uid != geteuid() && info.st_uid != 0 {
            throw .config(path: path, reason: "holds credentials but belongs to uid \(info.st_uid), not to this user (uid \(geteuid()))")
        }
        if info.st_mode & 0o077 != 0 {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw .config(path: path, reason: "holds credentials but is readable by others (mode \(mode)); chmod 600 \(UntrustedText.shown(path))")
        }
    }

    static func parse(_ bytes: [UInt8], path: String) throws(RegistryError) -> RegistryConfiguration {
        struct Entry: Decodable {
            var auth: String?
            var username: String?
            var password: String?
        }
        struct File: Decodable {
            var auths: [String: Entry]?
            var insecureRegistries: [String]?
            enum CodingKeys: String, CodingKey {
                case auths
                case insecureRegistries = "insecure-registries"
            }
        }
        let file: File
        do {
            file = try JSONDocument.decode(File.self, from: bytes, what: "registry configuration")
        } catch {
            // The decoder's message names keys, never values: no secret leaks.
            throw .config(path: path, reason: error.description)
        }
        var auths: [String: RegistryCredentials] = [:]
        for (key, entry) in file.auths ?? [:] {
            if let auth = entry.auth, !auth.isEmpty {
                guard let data = Data(base64Encoded: auth), let text = String(data: data, encoding: .utf8),
                      let colon = text.firstIndex(of: ":") else {
                    throw .config(path: path, reason: "auths.\(UntrustedText.shown(key, limit: 80)).auth is not base64 of user:password")
                }
                auths[key] = RegistryCredentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            } else if let username = entry.username, let password = entry.password {
                auths[key] = RegistryCredentials(username: username, password: password)
            }
        }
        return RegistryConfiguration(path: path, auths: auths, insecureRegistries: Set(file.insecureRegistries ?? []))
    }

    /// The credentials for `host` (`name[:port]`), if any.
    public func credentials(for host: String) -> RegistryCredentials? {
        auths[Self.normalize(host)]
    }

    public func isInsecure(_ host: String) -> Bool {
        insecureRegistries.contains(Self.normalize(host))
    }

    /// `https://index.docker.io/v1/` → `docker.io`; `Host:5000/` → `host:5000`.
    static func normalize(_ key: String) -> String {
        var text = Substring(key.lowercased())
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) {
            text = text.dropFirst(scheme.count)
        }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        switch text {
        case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com": return "docker.io"
        default: return String(text)
        }
    }
}
