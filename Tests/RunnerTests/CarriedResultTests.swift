import Foundation
import Sandbox
import Synchronization
import Testing
@testable import Runner
import TestSupport

/// A slot's finished result rides on its next claim (`CarriedMoves`, docs/ARCHITECTURE.md §11
/// "Requests per task"): one push claims the next task and publishes the last result, each ref
/// judged on its own. Counted with the picking worker's Git observer.
@Suite(.unit, .serialized) struct CarriedResultTests {
    /// A result for `id` on top of `claim`, built in the mirror and not pushed.
    static func pending(_ id: String, on connection: GridConnection, claim: GitOID) throws -> (CarriedMoves, GitOID) {
        let record = ResultRecord(taskID: id, nodeID: connection.settings.nodeID, exitCode: 0, stdout: "ok\n")
        let prepared = try GridResults(connection: connection).prepare(record, taskBytes: Array("{}".utf8), claim: claim)
        return (CarriedMoves([RefMove(prepared.name, from: nil, to: prepared.commit)]), prepared.commit)
    }

    @Test func theNextClaimPushCarriesTheLastResult() throws {
        try TaskPickerStaleListingTests.withGrid { grid, picker, _ in
            let first = try #require(try TaskPicker(connection: picker).next())
            let (carried, result) = try Self.pending(first.claim.taskID, on: picker, claim: first.claim.commit)
            grid.operations.withLock { $0 = [] }
            let second = try #require(try TaskPicker(connection: picker, carrying: carried).next())
            #expect(second.claim.taskID != first.claim.taskID)
            #expect(carried.applied, "\(String(describing: carried.outcomes))")
            #expect(grid.count(.push) == 1, "the claim and the result in one push: \(grid.operations.withLock { $0 })")
            #expect(try LedgerFixtures.git(["rev-parse", GridResults.refName(first.claim.taskID)], in: grid.bare) == result.hex)
            #expect(try !LedgerFixtures.git(["rev-parse", GridClaims.refName(second.claim.taskID)], in: grid.bare).isEmpty)
            #expect(carried.take().isEmpty, "taken once")
        }
    }

    /// Refs are judged one by one: a result someone else already published is refused, the claim beside it still lands.
    @Test func aRefusedResultDoesNotCostTheClaim() throws {
        try TaskPickerStaleListingTests.withGrid { grid, picker, other in
            let first = try #require(try TaskPicker(connection: picker).next())
            let id = first.claim.taskID
            let theirs = ResultRecord(taskID: id, nodeID: "other", exitCode: 0, stdout: "theirs\n")
            #expect(try GridResults(connection: other).publish(theirs, taskBytes: Array("{}".utf8), claim: nil))
            let (carried, _) = try Self.pending(id, on: picker, claim: first.claim.commit)
            let second = try #require(try TaskPicker(connection: picker, carrying: carried).next())
            #expect(!carried.applied)
            guard case .rejected? = carried.outcomes?[GridResults.refName(id)] else {
                Issue.record("\(String(describing: carried.outcomes))")
                return
            }
            #expect(try !LedgerFixtures.git(["rev-parse", GridClaims.refName(second.claim.taskID)], in: grid.bare).isEmpty)
        }
    }

    /// Nothing left to claim: no push carried the result, and the slot publishes it alone.
    @Test func withNothingToClaimTheResultIsNotTaken() throws {
        try TaskPickerStaleListingTests.withGrid { grid, picker, _ in
            var picks: [TaskPicker.Pick] = []
            while let pick = try TaskPicker(connection: picker).next() { picks.append(pick) }
            #expect(picks.count == TaskPickerStaleListingTests.ids.count)
            let last = try #require(picks.last)
            let (carried, _) = try Self.pending(last.claim.taskID, on: picker, claim: last.claim.commit)
            grid.operations.withLock { $0 = [] }
            #expect(try TaskPicker(connection: picker, carrying: carried).next() == nil)
            #expect(carried.outcomes == nil)
            #expect(grid.count(.push) == 0)
        }
    }
}
