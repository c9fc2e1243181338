import Foundation
import Testing
@testable import Runner
import TestSupport

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(6)

/// Ref moves against real remotes: a bare repository over the local transport
/// (file://) and the same over `git daemon` (a smart transport). The claim protocol
/// rests on these: exactly one racer wins, nothing is ever forced.
@Suite(.unit) struct LedgerRefTests {
    /// Races `count` ledgers (separate mirrors, as separate workers have) creating one ref.
    @Test(arguments: LedgerTransport.allCases)
    func createRefRaceHasExactlyOneWinner(transport: LedgerTransport) throws {
        try transport.withRemote(port: suitePorts[0]) { url, bare, directory in
            let racers = 4
            let ledgers = try (0..<racers).map { try LedgerFixtures.ledger(url, in: directory, credentials: transport.credentials, name: "mirror\($0)") }
            for round in 0..<5 {
                let name = "refs/dgrid/claims/t\(round)"
                let commits = try ledgers.enumerated().map { index, ledger in
                    try ledger.commit(parent: nil, changes: [
                        LedgerChange(path: "claim.json", content: LedgerFixtures.bytes("{\"node\":\"n\(index)\"}")),
                    ], message: "claim t\(round) by n\(index)")
                }
                let outcomes = try race(racers) { index in try ledgers[index].createRef(name, target: commits[index]) }
                let winners = outcomes.indices.filter { outcomes[$0] == .applied }
                #expect(winners.count == 1, "round \(round): \(outcomes)")
                // The remote holds the winner's commit, with its objects.
                let winner = try #require(winners.first)
                #expect(try LedgerFixtures.git(["rev-parse", name], in: bare) == commits[winner].hex)
                #expect(try LedgerFixtures.git(["cat-file", "-p", "\(name):claim.json"], in: bare) == "{\"node\":\"n\(winner)\"}")
                // Creating it again, even by the winner, is refused.
                #expect(try ledgers[winner].createRef(name, target: commits[winner]) != .applied)
            }
            // No push source refs leak to the remote.
            #expect(try LedgerFixtures.git(["for-each-ref", "refs/dgrid-push/"], in: bare).isEmpty)
        }
    }

    @Test(arguments: LedgerTransport.allCases)
    func updateRefIsCompareAndSwap(transport: LedgerTransport) throws {
        try transport.withRemote(port: suitePorts[1]) { url, bare, directory in
            let a = try LedgerFixtures.ledger(url, in: directory, credentials: transport.credentials, name: "a")
            let b = try LedgerFixtures.ledger(url, in: directory, credentials: transport.credentials, name: "b")
            let name = "refs/dgrid/claims/t1"
            let base = try a.commit(parent: nil, changes: [LedgerChange(path: "claim.json", content: [1])], message: "claim")
            #expect(try a.createRef(name, target: base) == .applied)
            try b.fetch([name])
            #expect(try b.remoteRefs(prefix: "refs/dgrid/claims/") == [name: base])

            // a renews (fast-forward); b, still believing `base`, is refused.
            let renewed = try a.commit(parent: base, changes: [LedgerChange(path: "claim.json", content: [2])], message: "renew")
            #expect(try a.updateRef(name, from: base, to: renewed) == .applied)
            let takeover = try b.commit(parent: base, changes: [LedgerChange(path: "claim.json", content: [3])], message: "take")
            guard case .rejected = try b.updateRef(name, from: base, to: takeover) else {
                Issue.record("an update from a stale value was applied")
                return
            }
            #expect(try LedgerFixtures.git(["rev-parse", name], in: bare) == renewed.hex)

            // Updating a ref that does not exist is refused, not a creation.
            guard case .rejected = try a.updateRef("refs/dgrid/claims/none", from: base, to: renewed) else {
                Issue.record("update of a missing ref was applied")
                return
            }
            // A non-fast-forward is refused even from the right old value.
            let sideways = try a.commit(parent: nil, changes: [LedgerChange(path: "x", content: [9])], message: "root")
            guard case .rejected = try a.updateRef(name, from: renewed, to: sideways) else {
                Issue.record("a non-fast-forward update was applied")
                return
            }
            #expect(try LedgerFixtures.git(["rev-parse", name], in: bare) == renewed.hex)
        }
    }

    /// Two updaters move the same ref from the same old value at once: exactly one
    /// wins and the ref holds its commit (libgit2's local transport alone would let
    /// both "win", the last overwriting).
    @Test(arguments: LedgerTransport.allCases)
    func updateRefRaceHasExactlyOneWinner(transport: LedgerTransport) throws {
        try transport.withRemote(port: suitePorts[2]) { url, bare, directory in
            let racers = 4
            let ledgers = try (0..<racers).map { try LedgerFixtures.ledger(url, in: directory, credentials: transport.credentials, name: "mirror\($0)") }
            let name = "refs/dgrid/claims/t1"
            var current = try ledgers[0].commit(parent: nil, changes: [LedgerChange(path: "claim.json", content: [0])],
                                                message: "claim")
            #expect(try ledgers[0].createRef(name, target: current) == .applied)
            for round in 1...5 {
                for ledger in ledgers { try ledger.fetch([name]) }
                let old = current
                let commits = try ledgers.enumerated().map { index, ledger in
                    try ledger.commit(parent: old, changes: [
                        LedgerChange(path: "claim.json", content: LedgerFixtures.bytes("round \(round) by \(index)")),
                    ], message: "take over")
                }
                let outcomes = try race(racers) { index in try ledgers[index].updateRef(name, from: old, to: commits[index]) }
                let winners = outcomes.indices.filter { outcomes[$0] == .applied }
                #expect(winners.count == 1, "round \(round): \(outcomes)")
                let winner = try #require(winners.first)
                current = commits[winner]
                #expect(try LedgerFixtures.git(["rev-parse", name], in: bare) == current.hex)
            }
        }
    }

    @Test(arguments: LedgerTransport.allCases)
    func deleteRefNeedsTheExpectedValue(transport: LedgerTransport) throws {
        try transport.withRemote(port: suitePorts[3]) { url, bare, directory in
            let ledger = try LedgerFixtures.ledger(url, in: directory, credentials: transport.credentials)
            let name = "refs/dgrid/results/t1"
            let first = try ledger.commit(parent: nil, changes: [LedgerChange(path: "r", content: [1])], message: "1")
            let second = try ledger.commit(parent: first, changes: [LedgerChange(path: "r", content: [2])], message: "2")
            #expect(try ledger.createRef(name, target: first) == .applied)
            #expect(try ledger.updateRef(name, from: first, to: second) == .applied)
            guard case .rejected = try ledger.deleteRef(name, expected: first) else {
                Issue.record("delete with a stale expected id was applied")
                return
            }
            #expect(try LedgerFixtures.git(["rev-parse", name], in: bare) == second.hex)
            #expect(try ledger.deleteRef(name, expected: second) == .applied)
            #expect(try ledger.remoteRefs(prefix: "refs/dgrid/").isEmpty)
            guard case .rejected = try ledger.deleteRef(name, expected: second) else {
                Issue.record("delete of a missing ref was applied")
                return
            }
        }
    }

    /// main is written by someone else (the `git` CLI here); the ledger lists it,
    /// fetches it and reads its files.
    @Test(arguments: LedgerTransport.allCases)
    func fetchesAndReadsAMainWrittenByGit(transport: LedgerTransport) throws {
        try transport.withRemote(port: suitePorts[4]) { url, bare, directory in
            let work = directory + "/work"
            try LedgerFixtures.git(["clone", "--quiet", bare, work])
            try FileManager.default.createDirectory(atPath: work + "/tasks/queue", withIntermediateDirectories: true)
            try "{\"task_id\":\"t1\",\"script\":\"echo hi\"}".write(toFile: work + "/tasks/queue/t1.json",
                                                                   atomically: true, encoding: .utf8)
            try "# grid".write(toFile: work + "/README.md", atomically: true, encoding: .utf8)
            try LedgerFixtures.git(["add", "."], in: work)
            try LedgerFixtures.git(["commit", "--quiet", "-m", "submit t1"], in: work)
            try LedgerFixtures.git(["push", "--quiet", "origin", "HEAD:refs/heads/main"], in: work)
            let tip = try #require(GitOID(hex: try LedgerFixtures.git(["rev-parse", "HEAD"], in: work)))

            let ledger = try LedgerFixtures.ledger(url, in: directory, credentials: transport.credentials)
            let refs = try ledger.remoteRefs()
            #expect(refs["refs/heads/main"] == tip)
            #expect(try ledger.remoteRefs(prefix: "refs/dgrid/").isEmpty)
            #expect(throws: LedgerError.self) { try ledger.tree(of: tip) }  // not fetched yet
            try ledger.fetch(["refs/heads/main", "refs/dgrid/claims/absent"])
            let files = try ledger.tree(of: tip)
            #expect(Set(files.keys) == ["README.md", "tasks/queue/t1.json"])
            #expect(try ledger.blob(#require(files["tasks/queue/t1.json"]), limit: 1024)
                == LedgerFixtures.bytes("{\"task_id\":\"t1\",\"script\":\"echo hi\"}"))

            // A fold on top of git's commit, pushed by compare-and-swap, is readable by git.
            let fold = try ledger.commit(parent: tip, changes: [
                LedgerChange(path: "tasks/queue/t1.json", content: nil),
                LedgerChange(path: "tasks/completed/n1-t1.json", content: LedgerFixtures.bytes("{}")),
            ], message: "fold")
            #expect(try ledger.updateRef("refs/heads/main", from: tip, to: fold) == .applied)
            try LedgerFixtures.git(["pull", "--quiet", "origin", "main"], in: work)
            #expect(FileManager.default.fileExists(atPath: work + "/tasks/completed/n1-t1.json"))
            #expect(!FileManager.default.fileExists(atPath: work + "/tasks/queue/t1.json"))
            try LedgerFixtures.git(["fsck", "--strict", "--no-dangling"], in: bare)
        }
    }

    /// Smart HTTP behind basic auth: a wrong token is an authentication error that
    /// does not show the token, and nothing is written.
    @Test func httpRefusesAWrongToken() throws {
        try LedgerTransport.http.withRemote(port: suitePorts[5]) { url, bare, directory in
            let wrong = "dgrid-wrong-Xb7mQ2rT9vLc4Hs8"
            let ledger = try LedgerFixtures.ledger(url, in: directory, credentials: .token(wrong))
            let commit = try ledger.commit(parent: nil, changes: [LedgerChange(path: "a", content: [1])], message: "m")
            for attempt in [{ _ = try ledger.remoteRefs() }, { _ = try ledger.createRef("refs/dgrid/claims/t1", target: commit) }] {
                let error = try #require(throws: LedgerError.self) { try attempt() }
                #expect(error.kind == .authentication, "\(error)")
                #expect(!"\(error)".contains(wrong))
            }
            #expect(try LedgerFixtures.git(["for-each-ref"], in: bare).isEmpty)
        }
    }

    @Test func invalidRefNamesAreRefused() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try LedgerFixtures.ledger(try LedgerFixtures.bareRepository(in: directory), in: directory)
        let commit = try ledger.commit(parent: nil, changes: [], message: "empty")
        for name in ["main", "refs/dgrid/../x", "refs/dgrid/claims/a b", "refs/x\n", "refs/dgrid-push/x", "+refs/x", "refs/x.lock"] {
            let error = try #require(throws: LedgerError.self) { try ledger.createRef(name, target: commit) }
            #expect(error.kind == .invalidInput)
        }
        #expect(throws: LedgerError.self) { try ledger.fetch(["HEAD"]) }
    }
}

/// Runs `body` on `count` threads released at the same instant; the results in index order.
func race<T: Sendable>(_ count: Int, _ body: @Sendable @escaping (Int) throws -> T) throws -> [T] {
    let start = DispatchSemaphore(value: 0)
    let group = DispatchGroup()
    let results = ResultBox<T>(count: count)
    for index in 0..<count {
        group.enter()
        Thread {
            start.wait()
            results.set(index, Result { try body(index) })
            group.leave()
        }.start()
    }
    for _ in 0..<count { start.signal() }
    group.wait()
    return try results.values().map { try $0.get() }
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Result<T, any Error>?]
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Result<T, any Error>) { lock.withLock { storage[index] = value } }
    func values() -> [Result<T, any Error>] { lock.withLock { storage.compactMap { $0 } } }
}
