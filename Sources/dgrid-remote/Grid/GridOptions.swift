import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `--repo` and credentials, shared by the grid verbs. Flags win over D-GRID's
/// environment names (`DGRID_REPO_URL`, `GIT_TOKEN`), which win over defaults.
struct GridOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The grid repository (file://, git://, http(s)://, ssh:// or a path); default $DGRID_REPO_URL.", valueName: "URL"))
    var repo: String?

    @Option(name: .long, help: ArgumentHelp("HTTPS token file (0600). Without it, $GIT_TOKEN is read once and removed from the environment.", valueName: "FILE"))
    var tokenFile: String?

    /// Settings for this grid as this node.
    func settings(nodeID: String? = nil) -> GridSettings {
        let environment = ProcessInfo.processInfo.environment
        guard let repository = repo ?? environment["DGRID_REPO_URL"], !repository.isEmpty else {
            ImageCLI.fail(GridError.local("no grid repository: give --repo URL or set DGRID_REPO_URL"))
        }
        let node = nodeID ?? environment["NODE_ID"] ?? Self.defaultNodeID()
        guard LedgerLayout.isValidNodeID(node) else {
            ImageCLI.fail(GridError.local("invalid node id '\(node)': use 1-64 of A-Z a-z 0-9 . _ -"))
        }
        var settings = GridSettings(repository: repository, nodeID: node, state: StateDirectory.forThisUser())
        do {
            settings.credentials = try GitCredentials.fromEnvironment(tokenFile: tokenFile)
        } catch {
            ImageCLI.fail(error)
        }
        return settings
    }

    /// `node-<hostname>`, reduced to the characters node ids allow.
    static func defaultNodeID() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let cleaned = String(host.unicodeScalars.map { scalar -> Character in
            CharacterSet.alphanumerics.contains(scalar) && scalar.isASCII ? Character(scalar) : "-"
        }.prefix(58))
        return "node-" + (cleaned.isEmpty ? "unknown" : cleaned)
    }

    func connect(nodeID: String? = nil) -> GridConnection {
        do {
            return try GridConnection(settings: settings(nodeID: nodeID))
        } catch {
            ImageCLI.fail(error)
        }
    }
}
