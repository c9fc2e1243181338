import Foundation

/// The node's own record (`refs/dgrid/nodes/<id>`, folded into
/// `nodes/<id>.json` for D-GRID's dashboard), moved forward on every beat.
struct NodeHeartbeat {
    let connection: GridConnection

    func beat(status: String, now: Date = Date()) throws(GridError) {
        let settings = connection.settings
        let record = NodeRecord(nodeID: settings.nodeID, nodeName: Self.hostName(), cpuCount: ProcessInfo.processInfo.activeProcessorCount,
                                memoryGB: (Double(ProcessInfo.processInfo.physicalMemory) / 1e9 * 10).rounded() / 10,
                                diskGB: 0, lastHeartbeat: ISOTime.string(now), status: status, slots: settings.slots,
                                workerVersion: RunnerInfo.workerVersion)
        let name = GridConnection.nodesPrefix + settings.nodeID
        for _ in 0..<3 {
            let outcome = try connection.withLedger { (ledger) throws(LedgerError) -> RefUpdate in
                let current = try ledger.remoteRefs(prefix: name)[name]
                let commit = try ledger.commit(parent: current, changes: [LedgerChange(path: "node.json", content: record.json())],
                                               message: "heartbeat \(settings.nodeID)")
                if let current { return try ledger.updateRef(name, from: current, to: commit) }
                return try ledger.createRef(name, target: commit)
            }
            if outcome == .applied { return }
        }
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
