import Foundation
import Glibc
import Sandbox
import Testing
@testable import Runner
import TestSupport

/// Several backends of one grid (docs/ARCHITECTURE.md §11, "Several backends"), on local bare
/// repositories: the reconciler brings a backup behind the authority forward, the authority
/// behind a backup forward, merges two mains that both moved task by task (a second finish
/// goes to tasks/late/), copies results published on a backup, and leaves another grid alone;
/// a worker that knows a newer main moves a rolled-back authority forward before it claims.
@Suite(.unit) struct GridBackendsTests {
    /// Two bare repositories, and connections: to each alone, and to both (A first).
    struct Grids {
        let directory: String
        let bareA: String, bareB: String

        init() throws {
            directory = try LedgerFixtures.temporaryDirectory()
            for side in ["a", "b"] { try FileManager.default.createDirectory(atPath: directory + "/" + side, withIntermediateDirectories: true) }
            bareA = try LedgerFixtures.bareRepository(in: directory + "/a")
            bareB = try LedgerFixtures.bareRepository(in: directory + "/b")
        }

        func only(_ bare: String, node: String) throws -> GridConnection {
            try GridConnection(settings: GridSettings(repository: "file://" + bare, nodeID: node,
                                                      state: StateDirectory(path: directory + "/state-" + node)))
        }

        func both(node: String = "node_r") throws -> GridConnection {
            var settings = GridSettings(repository: "file://" + bareA, nodeID: node, state: StateDirectory(path: directory + "/state-" + node))
            settings.backups = [GridBackup(repository: "file://" + bareB)]
            return try GridConnection(settings: settings)
        }

        func main(_ bare: String) throws -> String { try LedgerFixtures.git(["rev-parse", "refs/heads/main"], in: bare) }

        func files(_ bare: String) throws -> [String] {
            try LedgerFixtures.git(["ls-tree", "-r", "--name-only", "main"], in: bare).split(separator: "\n").map(String.init)
        }

        func refs(_ bare: String, _ prefix: String) throws -> String { try LedgerFixtures.git(["for-each-ref", prefix], in: bare) }
    }

    static func task(_ id: String) -> (name: String, bytes: [UInt8]) {
        (id + ".json", Array("{\"task_id\":\"\(id)\",\"script\":\"true\",\"timeout_seconds\":5}".utf8))
    }

    /// Claims and publishes `id` as `connection`'s node; folds when asked.
    static func run(_ id: String, on connection: GridConnection, fold: Bool = true) throws {
        let claim = try #require(try GridClaims(connection: connection).claim(id, takingOver: nil, now: Date()))
        let record = ResultRecord(taskID: id, nodeID: connection.settings.nodeID, exitCode: 0, stdout: "ok \(id)\n")
        #expect(try GridResults(connection: connection).publish(record, taskBytes: task(id).bytes, claim: claim.commit))
        if fold { _ = try GridFold(connection: connection).run() }
    }

    /// A grid on A with t0…t3 queued, copied to B by the reconciler.
    static func gridInStep(_ grids: Grids) throws -> GridConnection {
        let a = try grids.only(grids.bareA, node: "node_a")
        #expect(try GridInit(connection: a).run().created)
        _ = try GridSubmit(connection: a).submit((0..<4).map { task("t\($0)") }, priority: nil, submitter: "test")
        let outcomes = try BackendReconciler(connection: try grids.both()).run()
        #expect(outcomes.map(\.main) == [.created], "\(outcomes)")
        #expect(try grids.main(grids.bareA) == grids.main(grids.bareB))
        return a
    }

    static func completedFiles(_ files: [String], _ id: String) -> [String] {
        files.filter { $0.hasPrefix("tasks/completed/") && $0.hasSuffix("-\(id).json") }
    }

    @Test func whatABackupDidDuringAFailoverReachesTheAuthorityAndBothEndInStep() throws {
        let grids = try Grids()
        defer { try? FileManager.default.removeItem(atPath: grids.directory) }
        _ = try Self.gridInStep(grids)
        // While A was away, workers went on on B: t0 finished and folded there, t1's result published but not folded.
        let b = try grids.only(grids.bareB, node: "node_b")
        try Self.run("t0", on: b)
        try Self.run("t1", on: b, fold: false)
        let both = try grids.both()
        var outcomes = try BackendReconciler(connection: both).run()
        #expect(outcomes.map(\.main) == [.authorityForwarded], "\(outcomes)")
        #expect(outcomes.map(\.copiedResults) == [1], "t1's result is on A now")
        #expect(try grids.main(grids.bareA) == grids.main(grids.bareB))
        #expect(try grids.refs(grids.bareB, "refs/dgrid/results/").isEmpty, "copied results leave B")
        #expect(try !grids.refs(grids.bareA, "refs/dgrid/results/").isEmpty)
        // The authority's fold takes t1; the next turn moves B forward to it.
        #expect(try GridFold(connection: both).run().finished == 1)
        outcomes = try BackendReconciler(connection: both).run()
        #expect(outcomes.map(\.main) == [.forwarded], "\(outcomes)")
        #expect(try grids.main(grids.bareA) == grids.main(grids.bareB))
        let files = try grids.files(grids.bareA)
        for id in ["t0", "t1"] { #expect(Self.completedFiles(files, id).count == 1, "\(id): \(files)") }
        #expect(!files.contains { $0.hasPrefix("tasks/late/") })
        #expect(try BackendReconciler(connection: both).run().map(\.main) == [.same], "nothing left to do")
    }

    @Test func twoMainsThatBothMovedAreMergedTaskByTaskAndASecondRunIsLate() throws {
        let grids = try Grids()
        defer { try? FileManager.default.removeItem(atPath: grids.directory) }
        let a = try Self.gridInStep(grids)
        // Apart: t0 finished on both; t1 only on B; t9 submitted on B.
        try Self.run("t0", on: a)
        let b = try grids.only(grids.bareB, node: "node_b")
        try Self.run("t0", on: b)
        try Self.run("t1", on: b)
        _ = try GridSubmit(connection: b).submit([Self.task("t9")], priority: nil, submitter: "test")
        let (mainA, mainB) = (try grids.main(grids.bareA), try grids.main(grids.bareB))

        let both = try grids.both()
        let outcomes = try BackendReconciler(connection: both).run()
        #expect(outcomes.map(\.main) == [.merged(late: 1)], "\(outcomes)")
        let merged = try grids.main(grids.bareA)
        #expect(try grids.main(grids.bareB) == merged)
        let parents = try LedgerFixtures.git(["rev-list", "--parents", "-n", "1", merged], in: grids.bareA).split(separator: " ").map(String.init)
        #expect(parents.dropFirst() == [mainA, mainB], "a merge of both tips, the authority's first")

        let files = try grids.files(grids.bareA)
        #expect(Self.completedFiles(files, "t0") == ["tasks/completed/node_a-t0.json"], "the authority's record stands")
        #expect(Self.completedFiles(files, "t1") == ["tasks/completed/node_b-t1.json"], "B's only finish is kept")
        let late = files.filter { $0.hasPrefix("tasks/late/") }
        #expect(late.contains { $0.hasPrefix("tasks/late/node_b-t0.reconciled-") && $0.hasSuffix(".json.log") }, "\(late)")
        #expect(late.contains { $0.hasSuffix(".reason") }, "\(late)")
        let queued = files.filter { $0.hasPrefix("tasks/queue/") && $0.hasSuffix(".json") }.map { ($0 as NSString).lastPathComponent }
        #expect(Set(queued) == ["t2.json", "t3.json", "t9.json"], "\(queued)")
        #expect(!files.contains { $0.hasPrefix("tasks/in_progress/") && ($0.hasSuffix("-t0.json") || $0.hasSuffix("-t1.json")) })
        // Merging again changes nothing.
        #expect(try BackendReconciler(connection: both).run().map(\.main) == [.same])
        #expect(try grids.main(grids.bareA) == merged)
    }

    /// Anyone who can push to the backup can put a file there too large to copy: the merge stops with the
    /// reason, both mains stay as they were, and the backup is not reported unreachable.
    @Test func aFileTooLargeToMergeLeavesBothMainsAsTheyWere() throws {
        let grids = try Grids()
        defer { try? FileManager.default.removeItem(atPath: grids.directory) }
        let a = try Self.gridInStep(grids)
        try Self.run("t0", on: a)
        let b = try grids.only(grids.bareB, node: "node_b")
        _ = try GridSubmit(connection: b).submit([(name: "big.json", bytes: Array("{\"task_id\":\"big\",\"script\":\"\(String(repeating: "x", count: 4096))\",\"timeout_seconds\":5}".utf8))],
                                                 priority: nil, submitter: "test")
        let (mainA, mainB) = (try grids.main(grids.bareA), try grids.main(grids.bareB))
        var reconciler = BackendReconciler(connection: try grids.both())
        reconciler.blobLimit = 1024
        let outcomes = try reconciler.run()
        guard case .apart(let why)? = outcomes.first?.main else {
            Issue.record("\(outcomes)")
            return
        }
        #expect(why.contains("1024") || why.lowercased().contains("limit") || why.contains("larger"), "\(why)")
        #expect(try grids.main(grids.bareA) == mainA)
        #expect(try grids.main(grids.bareB) == mainB)
    }

    @Test func aBackendHoldingAnotherGridIsLeftAlone() throws {
        let grids = try Grids()
        defer { try? FileManager.default.removeItem(atPath: grids.directory) }
        let a = try grids.only(grids.bareA, node: "node_a")
        #expect(try GridInit(connection: a).run().created)
        let other = try grids.only(grids.bareB, node: "node_b")
        #expect(try GridInit(connection: other).run().created)
        let (mainA, mainB) = (try grids.main(grids.bareA), try grids.main(grids.bareB))
        let outcomes = try BackendReconciler(connection: try grids.both()).run()
        guard case .apart(let why)? = outcomes.first?.main else {
            Issue.record("\(outcomes)")
            return
        }
        #expect(why.contains("shares no history") && why.contains("--repo"), "\(why)")
        #expect(try grids.main(grids.bareA) == mainA)
        #expect(try grids.main(grids.bareB) == mainB)
    }

    /// A backend restored from an old copy (or back from a failover) serves an older main: a worker
    /// that has seen the newer one moves it forward before anything is picked from it, so finished
    /// tasks are not queued again. A grid of one backend takes main as served.
    @Test func anAuthorityServingAnOlderMainIsMovedForward() throws {
        let grids = try Grids()
        defer { try? FileManager.default.removeItem(atPath: grids.directory) }
        let a = try Self.gridInStep(grids)
        let old = try grids.main(grids.bareA)
        try Self.run("t0", on: a)
        let newer = try grids.main(grids.bareA)
        let both = try grids.both()
        #expect(try both.snapshot().mainTip?.hex == newer)
        try LedgerFixtures.git(["update-ref", "refs/heads/main", old], in: grids.bareA)  // restored from yesterday's copy
        let snapshot = try both.snapshot()
        #expect(snapshot.mainTip?.hex == newer)
        #expect(snapshot.finishedStatus(of: "t0") == .completed)
        #expect(!snapshot.queue.contains { $0.taskID == "t0" })
        #expect(try grids.main(grids.bareA) == newer, "moved forward on the server")

        try LedgerFixtures.git(["update-ref", "refs/heads/main", old], in: grids.bareA)
        #expect(try a.snapshot().mainTip?.hex == old, "one backend: main as served, though this worker saw a newer one")
        try LedgerFixtures.git(["update-ref", "refs/heads/main", newer], in: grids.bareA)
        let single = try grids.only(grids.bareA, node: "node_s")
        _ = try single.snapshot()
        try LedgerFixtures.git(["update-ref", "refs/heads/main", old], in: grids.bareA)
        #expect(try single.snapshot().mainTip?.hex == old, "one backend: main as served")
        #expect(try grids.main(grids.bareA) == old)
    }

    /// The authority's failure moves the very step to the next backend once its circuit opens,
    /// and back once the primary answers again (its probe).
    @Test func aDeadPrimaryHandsTheStepToTheBackupAndTakesItBack() throws {
        let grids = try Grids()
        defer { try? FileManager.default.removeItem(atPath: grids.directory) }
        _ = try Self.gridInStep(grids)
        let port = FreePort.loopbackPorts(1)[0]  // nothing listens there: connections are refused at once
        var settings = GridSettings(repository: "git://127.0.0.1:\(port)/grid.git", nodeID: "node_r",
                                    state: StateDirectory(path: grids.directory + "/state-failover"))
        settings.backups = [GridBackup(repository: "file://" + grids.bareB)]
        settings.circuitFailures = 1
        let connection = try GridConnection(settings: settings)
        let snapshot = try connection.snapshot()
        #expect(snapshot.mainTip?.hex == (try grids.main(grids.bareB)))
        #expect(connection.authorityState.index == 1)
        #expect(connection.authorityState.switches == 1)
        let states = connection.backendStates(authorityMain: snapshot.mainTip)
        #expect(states.map(\.authority) == [false, true])
        #expect(states[0].circuit == "open")
        #expect(states[1].mainTip == (try grids.main(grids.bareB)))
    }

    /// A primary that accepts connections and never answers is left at its first silence; its
    /// probes then run aside (`GridBackend.probeAside`), so no step waits on it again — before,
    /// each probe held one step for the whole answer bound.
    @Test func aSilentPrimaryIsProbedAsideAndNoStepWaitsOnIt() throws {
        let grids = try Grids()
        defer { try? FileManager.default.removeItem(atPath: grids.directory) }
        _ = try Self.gridInStep(grids)
        let silent = try SilentListener()
        var settings = GridSettings(repository: "git://127.0.0.1:\(silent.port)/grid.git", nodeID: "node_r",
                                    state: StateDirectory(path: grids.directory + "/state-silent"))
        settings.backups = [GridBackup(repository: "file://" + grids.bareB)]
        settings.backendAnswerSeconds = 0.5
        let connection = try GridConnection(settings: settings)
        #expect(try connection.snapshot().mainTip?.hex == (try grids.main(grids.bareB)), "the first silence moves the step")
        #expect(connection.authorityState.index == 1)
        let primary = connection.backends[0].circuit
        #expect(primary.snapshot().opened == 1)

        // Past its first backoff (2 s ± 20 %) the primary's probe is due: the steps go on on the backup at once.
        Thread.sleep(forTimeInterval: 2.6)
        var slowest = 0.0
        for _ in 0..<5 {
            let started = Date()
            _ = try connection.snapshot()
            slowest = max(slowest, Date().timeIntervalSince(started))
        }
        #expect(slowest < 0.4, "a step waited on the silent primary for \(slowest) s")
        #expect(connection.authorityState.index == 1)
        // The probe ran aside, met the silence and opened the circuit again.
        let deadline = Date().addingTimeInterval(5)
        while primary.snapshot().opened < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(primary.snapshot().opened == 2, "\(primary.snapshot())")
    }

    /// A TCP port whose backlog takes connections that nobody accepts or answers.
    final class SilentListener {
        let socket: Int32
        let port: Int

        init() throws {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.socket = socket
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(socket, pointer, length) == 0 && listen(socket, 16) == 0 && getsockname(socket, pointer, &length) == 0
                }
            }
            try #require(bound, "cannot listen on 127.0.0.1: errno \(errno)")
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(socket) }
    }

    /// A grid read from the backup that has no main yet names the backup, not the dead primary.
    @Test func aGridWithoutMainIsNamedByTheBackendItWasReadFrom() throws {
        let grids = try Grids()
        defer { try? FileManager.default.removeItem(atPath: grids.directory) }
        let port = FreePort.loopbackPorts(1)[0]  // nothing listens there
        let primary = "git://127.0.0.1:\(port)/grid.git"
        var settings = GridSettings(repository: primary, nodeID: "node_r", state: StateDirectory(path: grids.directory + "/state-empty"))
        settings.backups = [GridBackup(repository: "file://" + grids.bareB)]
        settings.circuitFailures = 1
        let connection = try GridConnection(settings: settings)
        #expect(connection.repositoryInUse == primary, "nothing read yet: the first repository")
        do {
            _ = try GridStatus(connection: connection).counts()
            Issue.record("a grid without main gave a status")
        } catch {
            #expect("\(error)".contains("grid file://\(grids.bareB) has no main branch"), "\(error)")
            #expect(!"\(error)".contains(primary), "\(error)")
        }
    }

    @Test func lateNamesKeepTheRecordsOwnName() {
        #expect(MainMerge.lateName("node_b-t0.json.log", label: "abc") == "node_b-t0.reconciled-abc.json.log")
        #expect(MainMerge.lateName("node_b-t0.json", label: "abc") == "node_b-t0.reconciled-abc.json")
    }
}
