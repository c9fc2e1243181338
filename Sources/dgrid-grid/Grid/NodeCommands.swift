import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `dgrid node`: this worker host's node key (docs/ARCHITECTURE.md §11).
struct GridNodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: VerbAbstract.gridNode,
        subcommands: [NodeInitCommand.self, NodeShowCommand.self])
}

/// Makes the key ahead of the first worker start, so its public half can be added to other hosts' allowed_workers.
struct NodeInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Make this host's node key ($DGRID_HOME/node/id_ed25519, 0600) and print its public half.")

    @Option(name: .long, help: ArgumentHelp("The node id the key's comment names (default: $NODE_ID, else node_<hostname>).", valueName: "ID"))
    var nodeID: String?

    func run() throws {
        let node = nodeID ?? ProcessInfo.processInfo.environment["NODE_ID"] ?? GridOptions.defaultNodeID()
        do {
            let (key, created) = try NodeKey.loadOrCreate(state: StateDirectory.forThisUser(), nodeID: node)
            print(created ? "made \(key.path)" : "\(key.path) exists (a node keeps its key; move it away first to make a new one)")
            print("\(node) \(key.publicLine)")
            print(key.publicKey.fingerprint)
        } catch {
            ImageCLI.fail(error)
        }
    }
}

struct NodeShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print this host's node public key as an allowed_workers line, and its fingerprint.")

    @Option(name: .long, help: ArgumentHelp("The node id to print before the key (default: $NODE_ID, else node_<hostname>).", valueName: "ID"))
    var nodeID: String?

    func run() throws {
        let node = nodeID ?? ProcessInfo.processInfo.environment["NODE_ID"] ?? GridOptions.defaultNodeID()
        do {
            guard let key = try NodeKey.load(state: StateDirectory.forThisUser()) else {
                ImageCLI.fail(GridError.local("this host has no node key yet: run `dgrid node init` (a worker makes one on its first start)"))
            }
            print("\(node) \(key.publicLine)")
            print(key.publicKey.fingerprint)
        } catch {
            ImageCLI.fail(error)
        }
    }
}
