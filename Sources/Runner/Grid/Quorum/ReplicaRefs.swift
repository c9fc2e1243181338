/// Where the runs of a quorum task live (docs/ARCHITECTURE.md §11): replica n's
/// claim at `refs/dgrid/claims/<id>/<n>`, its vote (the result its node
/// published) at `refs/dgrid/results/<id>/<n>`. A replicated task never has a
/// plain claim or result ref — Git keeps a name from being both a ref and a
/// folder of refs, so a plain one would block every replica: the fold drops
/// such a ref as a forgery. Each is created exclusively, so a replica has one
/// holder and one vote; takeovers and renewals replace its one orphan commit.
enum ReplicaRefs {
    static let replicaRange = 1...TaskQuorum.replicaLimit

    static func claim(_ taskID: String, replica: Int) -> String {
        GridConnection.claimsPrefix + taskID + "/" + String(replica)
    }

    static func vote(_ taskID: String, replica: Int) -> String {
        GridConnection.resultsPrefix + taskID + "/" + String(replica)
    }

    /// Task id → replica → commit, for refs under `prefix` named `<valid id>/<n>` (n in
    /// `replicaRange`, written without leading zeros); anything else a writer pushed is ignored.
    static func parse(_ refs: [String: GitOID], prefix: String) -> [String: [Int: GitOID]] {
        var result: [String: [Int: GitOID]] = [:]
        for (name, oid) in refs where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let slash = rest.lastIndex(of: "/") else { continue }
            let id = String(rest[..<slash]), number = rest[rest.index(after: slash)...]
            guard TaskParser.isValidTaskID(id), let replica = Int(number), String(replica) == number,
                  replicaRange.contains(replica) else { continue }
            result[id, default: [:]][replica] = oid
        }
        return result
    }
}
