/// A record a node published (claim, heartbeat, result) as its commit holds it: the
/// record's bytes and the node's signature beside it (docs/ARCHITECTURE.md §11).
struct SignedRecord: Sendable {
    var bytes: [UInt8]
    /// `<record>.sig`; nil when the commit has none.
    var signature: [UInt8]?
    /// Why a `.sig` that is there was not read (over its size limit): refused as such, not as "unsigned".
    var signatureProblem: String?
}

extension WorkerTrust {
    /// `refusal(of:signature:nodeID:)` for a record as read from its commit.
    func refusal(of record: SignedRecord, nodeID: String) -> Refusal? {
        if let problem = record.signatureProblem { return Refusal(reason: "the signature is refused: \(problem)", fingerprint: nil) }
        return refusal(of: record.bytes, signature: record.signature, nodeID: nodeID)
    }
}
