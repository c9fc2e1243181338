import Foundation
import Sandbox
import Synchronization
import Testing
@testable import Runner
import TestSupport

/// A pick walks the listing it started from; on a busy grid that listing ages while
/// the walk pushes claim after claim. Once it shows itself behind — claims lost in a
/// row, or a won claim on a task that had finished — the pick lists again instead of
/// pushing through the rest (at 100 workers the old walk kept idle workers pushing
/// for minutes: bench/scale.sh). Each case counts the picking worker's Git operations.
@Suite(.unit, .serialized) struct TaskPickerStaleListingTests {
    final class Grid: Sendable {
        let url: String
        let bare: String
        let directory: String
        let operations = Mutex<[GitOperationKind]>([])
        /// Every connection's `fold_interval_seconds` (the fold lease runs two); nil: the default.
        let foldIntervalSeconds: Double?

        init(url: String, bare: String, directory: String, foldIntervalSeconds: Double? = nil) {
            self.url = url
            self.bare = bare
            self.directory = directory
            self.foldIntervalSeconds = foldIntervalSeconds
        }

        func connection(_ node: String, counted: Bool = false) throws -> GridConnection {
            var settings = GridSettings(repository: url, nodeID: node,
                                        state: StateDirectory(path: directory + "/state-" + node))
            if let foldIntervalSeconds { settings.foldIntervalSeconds = foldIntervalSeconds }
            if counted { settings.gitObserver = { [self] kind, _, _ in operations.withLock { $0.append(kind) } } }
            return try GridConnection(settings: settings)
        }

        func count(_ kind: GitOperationKind) -> Int { operations.withLock { $0.filter { $0 == kind }.count } }
    }

    static let ids = (1...10).map { "t\($0)" }

    static func withGrid(_ transport: LedgerTransport = .file, _ body: (Grid, GridConnection, GridConnection) throws -> Void) throws {
        try transport.withRemote(port: 0) { url, bare, directory in
            let grid = Grid(url: url, bare: bare, directory: directory)
            let (picker, other) = (try grid.connection("picker", counted: true), try grid.connection("other"))
            #expect(try GridInit(connection: other).run().created)
            let files = ids.map { ($0 + ".json", Array("{\"task_id\":\"\($0)\",\"script\":\"true\",\"timeout_seconds\":5}".utf8)) }
            _ = try GridSubmit(connection: other).submit(files, priority: nil, submitter: "test")
            try body(grid, picker, other)
        }
    }

    /// A pick by `picker` during which, right after its listing, `other` claims every task.
    static func pickWhileAnotherClaimsEverything(_ picker: GridConnection, _ other: GridConnection) throws -> TaskPicker.Pick? {
        let taken = Mutex(false)
        return try TaskPicker(connection: picker, onPollCost: { _ in
            guard !taken.withLock({ let was = $0; $0 = true; return was }) else { return }
            for id in Self.ids { _ = try? GridClaims(connection: other).claim(id, takingOver: nil, now: Date()) }
        }).next()
    }

    @Test func claimsLostInARowMakeThePickListAgainNotPushThroughTheQueue() throws {
        try Self.withGrid { grid, picker, other in
            let pick = try Self.pickWhileAnotherClaimsEverything(picker, other)
            #expect(pick == nil, "every task is the other worker's")
            #expect(grid.count(.push) == TaskPicker.lossesBeforeRelist, "a claim push per task would be \(Self.ids.count)")
            #expect(grid.count(.list) == 2, "the first listing and the one after the lost claims")
        }
    }

    @Test func aWonClaimOnAFinishedTaskMakesThePickMoveToTheNewerListing() throws {
        try Self.withGrid { grid, picker, other in
            let done = Mutex(false)
            // Right after the picker's listing, the other worker runs every task and folds them.
            let pick = try TaskPicker(connection: picker, onPollCost: { _ in
                guard !done.withLock({ let was = $0; $0 = true; return was }) else { return }
                for id in Self.ids {
                    guard let claim = try? GridClaims(connection: other).claim(id, takingOver: nil, now: Date()) else { continue }
                    let record = ResultRecord(taskID: id, nodeID: "other", exitCode: 0, stdout: "ran on other\n")
                    _ = try? GridResults(connection: other).publish(record, taskBytes: [], claim: claim.commit)
                }
                _ = try? GridFold(connection: other, workerTrust: WorkerTrust(mode: .off)).run()
            }).next()
            #expect(pick == nil, "every task finished on the other worker")
            // One claim won on a finished task and withdrawn; then the newer listing shows nothing queued.
            #expect(grid.count(.push) == 2, "a claim and a withdrawal per task would be \(2 * Self.ids.count)")
            let refs = try LedgerFixtures.git(["for-each-ref", "--format=%(refname)", "refs/dgrid/claims/"], in: grid.bare)
            #expect(refs.isEmpty, "the withdrawn claim is gone: \(refs)")
        }
    }
}

extension TaskPickerStaleListingTests {
    /// The pick after a task may walk a listing this worker already holds when it is young, but
    /// never one taken before the task ran: that one still shows the task to do.
    @Test func aYoungListingIsReusedUnlessTakenBeforeTheTaskRan() throws {
        try Self.withGrid { grid, picker, _ in
            let before = GridConnection.monotonicNow()
            let first = try #require(try TaskPicker(connection: picker).next())
            grid.operations.withLock { $0 = [] }
            let second = try #require(try TaskPicker(connection: picker).next(reusingWithin: TaskPicker.reuseSeconds, takenAfter: before))
            #expect(grid.operations.withLock { $0 }.first == .push, "the listing after the first claim is reused: \(grid.operations.withLock { $0 })")
            #expect(second.claim.taskID != first.claim.taskID)

            let ran = GridConnection.monotonicNow()
            grid.operations.withLock { $0 = [] }
            _ = try #require(try TaskPicker(connection: picker).next(reusingWithin: TaskPicker.reuseSeconds, takenAfter: ran))
            #expect(grid.operations.withLock { $0 }.first == .list, "taken before: listed: \(grid.operations.withLock { $0 })")
        }
    }

    /// The queue's last tasks, fewer than the grid's nodes: every worker that comes free races for
    /// them, and one race lost ends the pick (the slot polls as an idle one). With as many tasks
    /// free as nodes, the pick walks on (`claimsLostInARowMakeThePickListAgainNotPushThroughTheQueue`).
    @Test func aRaceLostForTheLastTasksEndsThePick() throws {
        try Self.withGrid { grid, picker, other in
            // Three nodes on the grid; all but two tasks taken.
            for connection in [picker, other, try grid.connection("third")] { try NodeHeartbeat(connection: connection).beat(status: "active") }
            for id in Self.ids.dropLast(2) { _ = try #require(try GridClaims(connection: other).claim(id, takingOver: nil, now: Date())) }
            grid.operations.withLock { $0 = [] }
            let pick = try Self.pickWhileAnotherClaimsEverything(picker, other)
            #expect(pick == nil, "the last two went to the other worker")
            #expect(grid.count(.push) == 1 && grid.count(.list) == 1, "a listing and one lost claim: \(grid.operations.withLock { $0 })")
        }
    }
}

/// The same picker over `git daemon` (a real server on loopback).
@Suite(.system) struct TaskPickerAdvertisedListingTests {
    static let ids = TaskPickerStaleListingTests.ids

    /// Over a smart transport the server advertises every ref to a push: the check after a claim
    /// reads the grid from the claim's own push, so a pick costs a listing and a claim, no more.
    /// Main moved meanwhile (a fold ended the task): it lists as before and withdraws.
    @Test func overGitDaemonAClaimIsCheckedOnItsOwnPushesListing() throws {
        try TaskPickerStaleListingTests.withGrid(.gitDaemon) { grid, picker, other in
            let pick = try #require(try TaskPicker(connection: picker).next())
            #expect(grid.operations.withLock { $0 } == [.list, .push], "a listing (main fetched on it) and the claim")
            #expect(Self.ids.contains(pick.claim.taskID) && !pick.taskBytes.isEmpty)

            grid.operations.withLock { $0 = [] }
            let done = Mutex(false)
            let next = try TaskPicker(connection: picker, onPollCost: { _ in
                guard !done.withLock({ let was = $0; $0 = true; return was }) else { return }
                for id in Self.ids where id != pick.claim.taskID {
                    guard let claim = try? GridClaims(connection: other).claim(id, takingOver: nil, now: Date()) else { continue }
                    let record = ResultRecord(taskID: id, nodeID: "other", exitCode: 0, stdout: "ran on other\n")
                    _ = try? GridResults(connection: other).publish(record, taskBytes: [], claim: claim.commit)
                }
                _ = try? GridFold(connection: other, workerTrust: WorkerTrust(mode: .off)).run()
            }).next()
            #expect(next == nil, "the rest finished on the other worker")
            #expect(grid.count(.push) == 2 && grid.count(.list) == 2,
                    "one claim on a finished task, a listing (main moved), its withdrawal: \(grid.operations.withLock { $0 })")
        }
    }

    /// The pick after a task walks the listing its result push was shown (every ref, advertised to
    /// the push before it took anything): a task costs its claim and its result, no listing. When
    /// main moved since (a fold), or the listing is older than the window, the pick lists.
    @Test func thePickAfterATaskWalksWhatItsResultPushWasShown() throws {
        try TaskPickerStaleListingTests.withGrid(.gitDaemon) { grid, picker, other in
            let first = try #require(try TaskPicker(connection: picker).next())
            let ran = GridConnection.monotonicNow()
            let record = ResultRecord(taskID: first.claim.taskID, nodeID: "picker", exitCode: 0, stdout: "ran\n")
            #expect(try GridResults(connection: picker).publish(record, taskBytes: first.taskBytes, claim: first.claim.commit))
            grid.operations.withLock { $0 = [] }

            let second = try #require(try TaskPicker(connection: picker).next(reusingWithin: TaskPicker.reuseSeconds, takenAfter: ran))
            #expect(grid.operations.withLock { $0 } == [.push], "the claim only: \(grid.operations.withLock { $0 })")
            #expect(second.claim.taskID != first.claim.taskID, "the finished task is not picked again")

            // Main moved before the result push (the other worker folded the first result): the push
            // was shown a main the mirror does not have, so the pick lists (main fetched on it).
            _ = try GridFold(connection: other, workerTrust: WorkerTrust(mode: .off)).run()
            let record2 = ResultRecord(taskID: second.claim.taskID, nodeID: "picker", exitCode: 0, stdout: "ran\n")
            #expect(try GridResults(connection: picker).publish(record2, taskBytes: second.taskBytes, claim: second.claim.commit))
            grid.operations.withLock { $0 = [] }
            let third = try #require(try TaskPicker(connection: picker).next(reusingWithin: TaskPicker.reuseSeconds))
            #expect(grid.operations.withLock { $0 } == [.list, .push], "main moved: a listing, then the claim: \(grid.operations.withLock { $0 })")
            #expect(![first.claim.taskID, second.claim.taskID].contains(third.claim.taskID))

            // An old listing is not reused.
            grid.operations.withLock { $0 = [] }
            Thread.sleep(forTimeInterval: 0.3)
            _ = try #require(try TaskPicker(connection: picker).next(reusingWithin: 0.2))
            #expect(grid.operations.withLock { $0 }.first == .list, "older than the window: \(grid.operations.withLock { $0 })")
        }
    }

    /// A claim push that loses was shown every ref too: the pick walks on from that listing — no
    /// listing of its own, and not one push per task the other worker took meanwhile.
    @Test func aLostClaimWalksOnFromWhatItsPushWasShown() throws {
        try TaskPickerStaleListingTests.withGrid(.gitDaemon) { grid, picker, other in
            let pick = try TaskPickerStaleListingTests.pickWhileAnotherClaimsEverything(picker, other)
            #expect(pick == nil, "every task is the other worker's")
            #expect(grid.operations.withLock { $0 } == [.list, .push],
                    "the listing and one lost claim: \(grid.operations.withLock { $0 })")
        }
    }
}
