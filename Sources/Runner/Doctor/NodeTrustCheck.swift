import Sandbox
import Trust

/// `node.key` and `trust.workers` (docs/ARCHITECTURE.md §11): the key this host's
/// worker signs with, and whose records its folds take — read as a worker reads
/// them at start, changing nothing.
public enum NodeTrustCheck {
    public static func check(state: StateDirectory) -> [HostCheck] {
        var checks: [HostCheck] = []
        let keyPath = state.path + "/" + NodeKey.directoryName + "/" + NodeKey.fileName
        do {
            if let key = try NodeKey.load(state: state) {
                checks.append(.pass(.nodeKey, "\(key.path): \(key.publicKey.fingerprint)"))
            } else {
                checks.append(.pass(.nodeKey, "none yet: a worker makes \(keyPath) on its first start (`dgrid node init` makes it now, to list it in other hosts' allowed_workers)"))
            }
        } catch {
            checks.append(.fail(.nodeKey, "\(error)", fix: "a node key is its worker's alone: `chmod 600 \(keyPath)` if only this user ever read it, else move it away and run `dgrid node init`, and tell the grid's operators its new fingerprint"))
        }
        do {
            let trust = try WorkerTrust.load(state: state, trust: try HostTrust.load(state: state))
            switch trust.mode {
            case .allowedWorkers:
                checks.append(.pass(.trustWorkers, "allowed_workers: \(trust.allowedCount) entr\(trust.allowedCount == 1 ? "y" : "ies"); only results signed by a listed node's key fold here"))
            case .trustOnFirstUse:
                checks.append(.pass(.trustWorkers, "trust on first use (an open grid): the first key seen for each node id is pinned in \(state.path)/trust/\(WorkerTrust.knownWorkersName); list the nodes in allowed_workers for a grid whose results matter"))
            case .off:
                checks.append(.warn(.trustWorkers, "worker_trust = \"off\": folds here take any pusher's results and claims on their word",
                                    fix: "remove worker_trust from \(state.path)/trust/\(TrustPolicy.fileName) (trust on first use), or list the nodes in allowed_workers"))
            }
        } catch {
            checks.append(.fail(.trustWorkers, "\(error)", fix: "fix the file named; a worker refuses to start until then (exit 78)"))
        }
        return checks
    }
}
