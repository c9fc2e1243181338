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

/// The node id both verbs print before the key, as a worker would name itself.
struct NodeIDOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The node id (default: $NODE_ID, else node_<hostname>).", valueName: "ID"))
    var nodeID: String?

    var resolved: String { nodeID ?? ProcessInfo.processInfo.environment["NODE_ID"] ?? GridOptions.defaultNodeID() }

    /// The key as an allowed_workers line, then its fingerprint.
    func printLines(_ key: NodeKey) {
        print("\(resolved) \(key.publicLine)")
        print(key.publicKey.fingerprint)
    }
}

/// Makes the key ahead of the first worker start, so its public half can be added to other hosts' allowed_workers.
struct NodeInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Make this host's node key ($DGRID_HOME/node/id_ed25519, 0600) and print its public half.")

    @OptionGroup var node: NodeIDOption

    func run() throws {
        do {
            let (key, created) = try NodeKey.loadOrCreate(state: StateDirectory.forThisUser(), nodeID: node.resolved)
            print(created ? "made \(key.path)" : "\(key.path) exists (a node keeps its key; move it away first to make a new one)")
            node.printLines(key)
        } catch {
            ImageCLI.fail(error)
        }
    }
}

struct NodeShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print this host's node public key as an allowed_workers line, and its fingerprint.")

    @OptionGroup var node: NodeIDOption

    func run() throws {
        do {
            guard let key = try NodeKey.load(state: StateDirectory.forThisUser()) else {
                ImageCLI.fail(GridError.local("this host has no node key yet: run `dgrid node init` (a worker makes one on its first start)"))
            }
            node.printLines(key)
        } catch {
            ImageCLI.fail(error)
        }
    }
}
