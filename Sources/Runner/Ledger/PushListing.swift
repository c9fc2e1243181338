/// Every ref as a remote advertised it to a push over a smart transport (receive-pack lists
/// them all before it takes anything), with the push's own applied moves put in: a listing of
/// the grid that came with the push for free. A worker picks its next task from the one its
/// result push brought rather than listing again (`GridConnection.snapshot(reusingWithin:)`).
public struct PushListing: Sendable {
    public let refs: [String: GitOID]
    /// When the push connected, before the advertisement arrived (monotonic seconds, as
    /// `GridConnection.monotonicNow`): the listing is at least this old.
    public let listedAt: Double

    /// `advertised` with each applied move of `moves` made (a deleted ref left out).
    init(advertised: [String: GitOID], moves: [RefMove], outcomes: [String: RefUpdate], listedAt: Double) {
        var refs = advertised
        for move in moves where outcomes[move.name] == .applied { refs[move.name] = move.new }
        self.refs = refs
        self.listedAt = listedAt
    }
}
