import Testing
@testable import Runner
import TestSupport

/// What a push was shown is a listing once its own applied moves are in it: a claim or result
/// the push made is there, a deleted ref is gone, and a move the server refused leaves the
/// ref as it was advertised (another worker's claim stays theirs).
@Suite(.unit) struct PushListingTests {
    static func oid(_ digit: Character) -> GitOID { GitOID(hex: String(repeating: digit, count: 40))! }

    @Test func appliedMovesAreInTheListingAndRefusedOnesAreNot() {
        let advertised = ["refs/heads/main": Self.oid("1"), "refs/dgrid/claims/a": Self.oid("2"), "refs/dgrid/claims/b": Self.oid("3")]
        let moves = [RefMove("refs/dgrid/results/a", from: nil, to: Self.oid("4")),
                     RefMove("refs/dgrid/claims/a", from: Self.oid("2"), to: nil),
                     RefMove("refs/dgrid/claims/b", from: nil, to: Self.oid("5"))]
        let outcomes: [String: RefUpdate] = ["refs/dgrid/results/a": .applied, "refs/dgrid/claims/a": .applied,
                                             "refs/dgrid/claims/b": .rejected(reason: "exists")]
        let listing = PushListing(advertised: advertised, moves: moves, outcomes: outcomes, listedAt: 7)
        #expect(listing.refs == ["refs/heads/main": Self.oid("1"), "refs/dgrid/results/a": Self.oid("4"),
                                 "refs/dgrid/claims/b": Self.oid("3")])
        #expect(listing.listedAt == 7)
    }
}
