import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `--repo` and credentials, shared by the grid verbs. Flags win over D-GRID's
/// environment names (`DGRID_REPO_URL`, `GIT_TOKEN`), which win over defaults.
struct GridOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The grid repository (file://, git://, http(s)://, ssh:// or a path); default $DGRID_REPO_URL (several separated by spaces). Repeat for further copies of the same grid on other Git servers: the first reachable one is the authority, the others take over when it fails and are kept in step.", valueName: "URL"))
    var repo: [String] = []

    @Option(name: .long, help: ArgumentHelp("HTTPS token file (0600). Without it, $GIT_TOKEN is read once and removed from the environment.", valueName: "FILE"))
    var tokenFile: String?

    @Option(name: .long, help: ArgumentHelp("SSH private key for ssh:// grids (FILE.pub beside it is used when present); default $DGRID_SSH_KEY, else the SSH agent ($SSH_AUTH_SOCK), else ~/.ssh/id_ed25519 or ~/.ssh/id_rsa. Keys with a passphrase: load them into the agent.", valueName: "FILE"))
    var sshKey: String?

    @Option(name: .long, help: ArgumentHelp("known_hosts file an ssh:// grid's host key must be listed in; default $DGRID_SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts. Unknown or changed keys are refused.", valueName: "FILE"))
    var knownHosts: String?

    @Option(name: .long, help: ArgumentHelp("Overall bounds on each Git operation in seconds, e.g. list=30,fetch=300,push=60 (those are the defaults; name only what you change); default $DGRID_GIT_DEADLINES. A remote that is slower fails the operation, which is retried later.", valueName: "KIND=SECONDS,..."))
    var gitDeadlines: String?

    /// Settings for this grid as this node; one line and exit 1 when they cannot be made.
    func settings(nodeID: String? = nil) -> GridSettings {
        do {
            return try resolvedSettings(nodeID: nodeID)
        } catch {
            ImageCLI.fail(error)
        }
    }

    /// Settings for this grid as this node, or why not (`dgrid doctor` reports it instead of exiting).
    func resolvedSettings(nodeID: String? = nil) throws(GridError) -> GridSettings {
        // GIT_TOKEN is read, wiped and removed from the environment first,
        // whatever the transport, before anything copies the environment.
        let token: GitCredentials
        do {
            token = try GitCredentials.fromEnvironment(tokenFile: tokenFile)
        } catch {
            throw .ledger(error)
        }
        let environment = ProcessInfo.processInfo.environment
        let repositories = repo.isEmpty ? (environment["DGRID_REPO_URL"] ?? "").split(whereSeparator: \.isWhitespace).map(String.init) : repo
        guard let repository = repositories.first, !repository.isEmpty else {
            throw .local("no grid repository: give --repo URL or set DGRID_REPO_URL")
        }
        if let empty = repositories.firstIndex(where: \.isEmpty) {
            throw .local("--repo number \(empty + 1) is empty: give each backend's URL")
        }
        var seen = Set<String>()
        for url in repositories where !seen.insert(url).inserted {
            throw .local("--repo \(url) is given twice: list each backend of the grid once")
        }
        let node = nodeID ?? environment["NODE_ID"] ?? Self.defaultNodeID()
        if let problem = NodeIdentifier.problem(node) { throw .local(problem) }
        var settings = GridSettings(repository: repository, nodeID: node, state: StateDirectory.forThisUser())
        settings.credentials = try credentials(for: repository, token: token, environment)
        for backup in repositories.dropFirst() {
            settings.backups.append(GridBackup(repository: backup, credentials: try credentials(for: backup, token: token, environment)))
        }
        // A command run once (submit, status, fold) moves to the next backend at the first network
        // failure; a worker keeps its circuit_failures (worker.toml) for the streak that means an outage.
        if !settings.backups.isEmpty { settings.circuitFailures = 1 }
        settings.knownHostsPath = knownHosts
        if let text = gitDeadlines ?? environment["DGRID_GIT_DEADLINES"].flatMap({ $0.isEmpty ? nil : $0 }) {
            do { settings.gitDeadlines = try GitDeadlines(parsing: text) } catch { throw .local("\(error)") }
        }
        return settings
    }

    /// What `repository`'s transport is given: the token for http(s), the SSH key for ssh:// (one
    /// parser decides the transport, `RemoteLocation`), nothing for the rest.
    private func credentials(for repository: String, token: GitCredentials,
                             _ environment: [String: String]) throws(GridError) -> GitCredentials {
        let location: RemoteLocation
        do {
            location = try RemoteLocation.parse(repository)
        } catch {
            throw .ledger(error)
        }
        var sshProblem: GridError?
        let credentials = location.credentials(token: token) {
            do throws(GridError) { return try sshCredentials(environment) } catch { sshProblem = error; return .none }
        }
        if let sshProblem { throw sshProblem }
        return credentials
    }

    /// The key for an ssh:// grid: `--ssh-key`, `$DGRID_SSH_KEY`, the agent,
    /// then the usual key files. The key is handed to libgit2 by path, through
    /// its credential callback; nothing of it reaches argv or a task.
    func sshCredentials(_ environment: [String: String]) throws(GridError) -> GitCredentials {
        func key(_ path: String) -> GitCredentials {
            let publicKey = path + ".pub"
            return .sshKey(privateKeyPath: path, publicKeyPath: FileManager.default.fileExists(atPath: publicKey) ? publicKey : nil,
                           passphrase: nil)
        }
        if let path = sshKey ?? environment["DGRID_SSH_KEY"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw .local("cannot read the SSH key \(path): check the path given to --ssh-key or DGRID_SSH_KEY")
            }
            return key(path)
        }
        if let socket = environment["SSH_AUTH_SOCK"], !socket.isEmpty { return .sshAgent }
        let home = environment["HOME"] ?? "/root"
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] where FileManager.default.isReadableFile(atPath: "\(home)/.ssh/\(name)") {
            return key("\(home)/.ssh/\(name)")
        }
        return .none
    }

    /// `node_<hostname>`, reduced to the characters node ids allow ('-' and '.' become '_').
    static func defaultNodeID() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let cleaned = String(host.unicodeScalars.map { scalar -> Character in
            CharacterSet.alphanumerics.contains(scalar) && scalar.isASCII ? Character(scalar) : "_"
        }.prefix(58))
        return "node_" + (cleaned.isEmpty ? "unknown" : cleaned)
    }

    func connect(nodeID: String? = nil) -> GridConnection {
        do {
            let connection = try GridConnection(settings: settings(nodeID: nodeID))
            // Kept for the life of the process, never freed: a command ends with the process,
            // and freeing its caches one string at a time (main's listing: every file on a
            // year-old grid) cost a fold on such a grid more than its own commit (docs/ARCHITECTURE.md §10).
            _ = Unmanaged.passRetained(connection)
            return connection
        } catch {
            ImageCLI.fail(error)
        }
    }
}
