import CGitStream
import Foundation
import Testing
import TestSupport
@testable import Runner

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(3)

/// Batched ref moves, fetches that leave no local refs, pack consolidation and
/// the network timeout — what keeps a busy worker's Git traffic to one round
/// trip per step and its mirror small.
@Suite(.system) struct LedgerBatchTests {
    /// Each move of a batch is judged alone, in one push: a refused one does not
    /// stop the others, and every outcome is reported.
    @Test(arguments: LedgerTransport.allCases)
    func moveRefsJudgesEachRefAlone(transport: LedgerTransport) throws {
        try transport.withRemote(port: suitePorts[0]) { url, bare, directory in
            let ledger = try LedgerFixtures.ledger(url, in: directory, credentials: transport.credentials)
            func commit(_ text: String) throws -> GitOID {
                try ledger.commit(parent: nil, changes: [LedgerChange(path: "f", content: LedgerFixtures.bytes(text))], message: text)
            }
            let (c1, c2, c3) = (try commit("one"), try commit("two"), try commit("three"))
            #expect(try ledger.createRef("refs/dgrid/claims/x", target: c1) == .applied)
            #expect(try ledger.createRef("refs/dgrid/claims/y", target: c2) == .applied)

            let outcomes = try ledger.moveRefs([
                RefMove("refs/dgrid/claims/x", from: nil, to: c3),   // exists: refused
                RefMove("refs/dgrid/claims/z", from: nil, to: c3),   // new: applied
                RefMove("refs/dgrid/claims/y", from: c2, to: nil),   // as expected: deleted
                RefMove("refs/dgrid/claims/w", from: c1, to: c3),    // does not exist: refused
            ])
            #expect(outcomes.count == 4)
            #expect(outcomes["refs/dgrid/claims/x"] != .applied)
            #expect(outcomes["refs/dgrid/claims/z"] == .applied)
            #expect(outcomes["refs/dgrid/claims/y"] == .applied)
            #expect(outcomes["refs/dgrid/claims/w"] != .applied)
            let remote = try LedgerFixtures.git(["for-each-ref", "--format=%(refname) %(objectname)", "refs/dgrid/"], in: bare)
            #expect(remote == "refs/dgrid/claims/x \(c1.hex)\nrefs/dgrid/claims/z \(c3.hex)", "\(remote)")
            #expect(try LedgerFixtures.git(["cat-file", "-p", "refs/dgrid/claims/z:f"], in: bare) == "three")
        }
    }

    @Test func aRefMovedTwiceInOneBatchIsRefusedBeforeAnythingMoves() throws {
        try LedgerTransport.file.withRemote(port: 0) { url, bare, directory in
            let ledger = try LedgerFixtures.ledger(url, in: directory)
            let c1 = try ledger.commit(parent: nil, changes: [LedgerChange(path: "f", content: [1])], message: "one")
            #expect(throws: LedgerError.self) {
                try ledger.moveRefs([RefMove("refs/dgrid/claims/a", from: nil, to: c1),
                                     RefMove("refs/dgrid/claims/b", from: nil, to: c1),
                                     RefMove("refs/dgrid/claims/a", from: c1, to: nil)])
            }
            #expect(try LedgerFixtures.git(["for-each-ref", "refs/dgrid/"], in: bare).isEmpty)
        }
    }

    /// Claim, result and heartbeat commits are read once: fetching them must
    /// not leave a local ref behind (refs would pile up and slow negotiation).
    @Test func fetchWithoutKeepingRefsLeavesOnlyTheObjects() throws {
        try LedgerTransport.gitDaemon.withRemote(port: suitePorts[1]) { url, _, directory in
            let writer = try LedgerFixtures.ledger(url, in: directory, name: "writer")
            let commit = try writer.commit(parent: nil, changes: [LedgerChange(path: "claim.json", content: [0x7b, 0x7d])], message: "c")
            #expect(try writer.createRef("refs/dgrid/claims/t1", target: commit) == .applied)

            let reader = try LedgerFixtures.ledger(url, in: directory, name: "reader")
            #expect(!reader.hasObject(commit))
            try reader.fetch(["refs/dgrid/claims/t1"], keepRefs: false)
            #expect(reader.hasObject(commit))
            #expect(try reader.tree(of: commit)["claim.json"] != nil)
            #expect(try LedgerFixtures.git(["for-each-ref"], in: directory + "/reader").isEmpty)
        }
    }

    /// Past the threshold, a fetch leaves one pack holding everything: what
    /// was fetched and what the ledger built itself (loose objects).
    @Test func manyPacksAreConsolidatedIntoOneAndNothingIsLost() throws {
        try LedgerTransport.file.withRemote(port: 0) { url, _, directory in
            let writer = try LedgerFixtures.ledger(url, in: directory, name: "writer")
            let reader = try LedgerFixtures.ledger(url, in: directory, name: "reader")
            reader.packConsolidationThreshold = 6
            var commits: [GitOID] = []
            var own: [GitOID] = []
            for index in 0..<10 {
                let commit = try writer.commit(parent: nil, changes: [LedgerChange(path: "n", content: LedgerFixtures.bytes("\(index)"))],
                                               message: "c\(index)")
                #expect(try writer.createRef("refs/dgrid/results/t\(index)", target: commit) == .applied)
                try reader.fetch(["refs/dgrid/results/t\(index)"], keepRefs: false)
                commits.append(commit)
                own.append(try reader.commit(parent: commit, changes: [LedgerChange(path: "mine", content: [UInt8(index)])],
                                             message: "own \(index)"))
            }
            let packDirectory = directory + "/reader/objects/pack"
            let packs = try FileManager.default.contentsOfDirectory(atPath: packDirectory).filter { $0.hasSuffix(".pack") }
            // 10 fetches with a threshold of 6: consolidated once at the 7th, then 3 more.
            #expect(packs.count <= 4, "\(packs)")
            #expect(packs.count >= 1)
            // Every fetched and every self-built commit still reads back.
            for (index, commit) in commits.enumerated() {
                #expect(try reader.tree(of: commit)["n"].map { try reader.blob($0, limit: 16) } == LedgerFixtures.bytes("\(index)"))
            }
            for (index, commit) in own.enumerated() {
                #expect(try reader.tree(of: commit)["mine"].map { try reader.blob($0, limit: 16) } == [UInt8(index)])
            }
            // A fresh ledger on the same mirror (another process) reads them too.
            let other = try LedgerFixtures.ledger(url, in: directory, name: "reader")
            #expect(try other.tree(of: own[0])["mine"] != nil)
        }
    }

    /// A server that accepts the connection and then says nothing fails the
    /// operation after the bound, with a message that says so, instead of
    /// hanging the worker forever.
    @Test func aSilentServerFailsTheOperationAfterTheTimeout() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = suitePorts[2]
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        listener.arguments = ["-c", """
            import signal, socket
            # The test process may hand down SIGTERM and SIGALRM ignored.
            signal.signal(signal.SIGTERM, signal.SIG_DFL); signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(120)  # never outlives a killed test run for long
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", \(port))); s.listen(8); print("ready", flush=True)
            held = []
            while True:
                c, _ = s.accept(); held.append(c)
            """]
        let ready = Pipe()
        listener.standardOutput = ready
        try listener.run()
        defer { kill(listener.processIdentifier, SIGKILL); listener.waitUntilExit() }
        let greeting = ready.fileHandleForReading.readData(ofLength: 6)
        try #require(String(decoding: greeting, as: UTF8.self) == "ready\n", "the silent listener could not start on port \(port)")

        _ = LibGit2.initialized
        dgrid_git_stream_set_timeout(2)
        defer { dgrid_git_stream_set_timeout(Int32(LibGit2.networkIdleTimeoutSeconds)) }
        let ledger = try LedgerFixtures.ledger("git://127.0.0.1:\(port)/grid.git", in: directory)
        let started = Date()
        do {
            _ = try ledger.remoteRefs()
            Issue.record("a silent server answered")
        } catch {
            #expect(error.kind == .network)
            #expect(error.message.contains("nothing for 2 s"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 30)
    }
}
