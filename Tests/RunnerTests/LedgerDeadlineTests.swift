import Foundation
import Testing
import TestSupport
@testable import Runner

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(14)

/// Every network operation of the ledger has an overall deadline (docs/THREATS.md: a
/// dripping remote). A server that sends one byte a second is never idle for
/// the 60 s idle timeout, so before the deadline it held a listing, a fetch or
/// a push — and every Git step of the worker queued behind it — for as long as
/// it liked. Each test puts a drip proxy (one byte a second from the server)
/// in front of a real server and expects the operation to fail at its deadline
/// with an error that says which operation, on which remote, and what to do.
@Suite(.system) struct LedgerDeadlineTests {
    /// Deadlines short enough for a test, each kind on its own.
    static func deadlines(list: Double = 60, fetch: Double = 60, push: Double = 60) -> GitDeadlines {
        GitDeadlines(list: list, fetch: fetch, push: push)
    }

    /// How late past its deadline an operation may fail: the poll's wake-up,
    /// closing the connection, and a loaded machine.
    static let slack = 4.0

    /// Runs `operation`, expecting a deadline failure of `kind` after about `seconds`.
    static func expectDeadline<T>(_ kind: GitOperationKind, after seconds: Double, remote: String,
                                  sourceLocation: SourceLocation = #_sourceLocation,
                                  _ operation: () throws -> T) {
        let started = Date()
        do {
            _ = try operation()
            Issue.record("the dripping server's \(kind) succeeded", sourceLocation: sourceLocation)
        } catch let error as LedgerError {
            let elapsed = Date().timeIntervalSince(started)
            #expect(error.deadlineExceeded == kind, "\(error)", sourceLocation: sourceLocation)
            #expect(error.kind == .network, "\(error)", sourceLocation: sourceLocation)
            #expect(error.remote.contains(remote), "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains("\(GitDeadlines.shown(seconds)) s deadline for a Git \(kind)"), "\(error)",
                    sourceLocation: sourceLocation)
            #expect(error.hint.contains("raise the \(kind) deadline"), "\(error)", sourceLocation: sourceLocation)
            #expect(elapsed >= seconds - 0.5 && elapsed < seconds + slack,
                    "failed after \(elapsed) s, deadline \(seconds) s: \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error: \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Refs for the remote to advertise: a listing of a few hundred bytes, which
    /// takes minutes at a byte a second (an empty repository's is a few bytes).
    static func populate(_ bare: String, in directory: String) throws {
        let writer = try LedgerFixtures.ledger("file://" + bare, in: directory, name: "populate")
        let commit = try writer.commit(parent: nil, changes: [LedgerChange(path: "f", content: [1])], message: "c")
        for name in ["refs/heads/main"] + (0..<6).map({ "refs/dgrid/claims/task-\($0)" }) {
            #expect(try writer.createRef(name, target: commit) == .applied)
        }
    }

    @Test func aDrippingGitDaemonFailsTheListingAtItsDeadline() throws {
        try LedgerTransport.gitDaemon.withRemote(port: suitePorts[0]) { _, bare, directory in
            try Self.populate(bare, in: directory)
            let proxy = try DripProxy(port: suitePorts[1], upstreamPort: suitePorts[0], mode: .everyConnection, directory: directory)
            defer { proxy.stop() }
            let ledger = try GitLedger(remote: "git://127.0.0.1:\(suitePorts[1])/grid.git", mirrorPath: directory + "/mirror",
                                       deadlines: Self.deadlines(list: 3))
            Self.expectDeadline(.list, after: 3, remote: "127.0.0.1:\(suitePorts[1])") { try ledger.remoteRefs() }
            // The ledger is still usable: a fresh listing starts a fresh deadline.
            Self.expectDeadline(.list, after: 3, remote: "127.0.0.1:\(suitePorts[1])") { try ledger.remoteRefs(prefix: "refs/heads/") }
        }
    }

    /// libgit2's HTTP transport reads through dgrid's stream too.
    @Test func aDrippingHTTPServerFailsTheListingAtItsDeadline() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let served = directory + "/served"
        try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
        try Self.populate(try LedgerFixtures.bareRepository(in: served), in: directory)
        try LedgerFixtures.withGitHTTP(serving: served, port: suitePorts[2], token: LedgerTransport.httpToken) {
            let proxy = try DripProxy(port: suitePorts[3], upstreamPort: suitePorts[2], mode: .everyConnection, directory: directory)
            defer { proxy.stop() }
            let ledger = try GitLedger(remote: "http://127.0.0.1:\(suitePorts[3])/git/grid.git", mirrorPath: directory + "/mirror",
                                       credentials: .token(LedgerTransport.httpToken), deadlines: Self.deadlines(list: 3))
            Self.expectDeadline(.list, after: 3, remote: "127.0.0.1:\(suitePorts[3])") { try ledger.remoteRefs() }
        }
    }

    /// libssh2 reads the socket itself, past dgrid's stream: the stream's
    /// watchdog shuts the socket down at the deadline.
    @Test func aDrippingSSHServerFailsTheListingAtItsDeadline() throws {
        try SSHRemote.with(port: suitePorts[4]) { ssh in
            try Self.populate(ssh.bare, in: ssh.directory)
            let proxy = try DripProxy(port: suitePorts[5], upstreamPort: suitePorts[4], mode: .everyConnection, directory: ssh.directory)
            defer { proxy.stop() }
            // The proxy's address, with the server's key.
            let knownHosts = ssh.directory + "/known_hosts_proxy"
            let line = ssh.knownHostsLine.replacingOccurrences(of: "[127.0.0.1]:\(suitePorts[4])", with: "[127.0.0.1]:\(suitePorts[5])")
            try (line + "\n").write(toFile: knownHosts, atomically: true, encoding: .utf8)
            let ledger = try GitLedger(remote: "ssh://root@127.0.0.1:\(suitePorts[5])\(ssh.bare)", mirrorPath: ssh.directory + "/mirror",
                                       credentials: ssh.credentials, knownHosts: SSHKnownHosts(path: knownHosts),
                                       deadlines: Self.deadlines(list: 3))
            // (Redaction shows an ssh:// remote as ssh://***@127.0.0.1:***: the port and path look token-like to it.)
            Self.expectDeadline(.list, after: 3, remote: "ssh://") { try ledger.remoteRefs() }
        }
    }

    @Test func aDrippingFetchFailsAtItsDeadlineAndLeavesTheMirrorWithoutIt() throws {
        try LedgerTransport.gitDaemon.withRemote(port: suitePorts[6]) { url, _, directory in
            let writer = try LedgerFixtures.ledger(url, in: directory, name: "writer")
            let commit = try writer.commit(parent: nil, changes: [LedgerChange(path: "f", content: [1, 2, 3])], message: "c")
            #expect(try writer.createRef("refs/heads/main", target: commit) == .applied)

            let proxy = try DripProxy(port: suitePorts[7], upstreamPort: suitePorts[6], mode: .everyConnection, directory: directory)
            defer { proxy.stop() }
            let reader = try GitLedger(remote: "git://127.0.0.1:\(suitePorts[7])/grid.git", mirrorPath: directory + "/reader",
                                       deadlines: Self.deadlines(fetch: 3))
            Self.expectDeadline(.fetch, after: 3, remote: "127.0.0.1:\(suitePorts[7])") { try reader.fetch(["refs/heads/main"]) }
            #expect(!reader.hasObject(commit))
        }
    }

    /// A poll lists and fetches main on one connection: it is held to the listing's deadline,
    /// not the five minutes a fetch may take (before, a stalling server held the poll that long).
    @Test func aDrippingListingThatWouldFetchFailsAtTheListingsDeadline() throws {
        try LedgerTransport.gitDaemon.withRemote(port: suitePorts[10]) { _, bare, directory in
            try Self.populate(bare, in: directory)
            let proxy = try DripProxy(port: suitePorts[11], upstreamPort: suitePorts[10], mode: .everyConnection, directory: directory)
            defer { proxy.stop() }
            let ledger = try GitLedger(remote: "git://127.0.0.1:\(suitePorts[11])/grid.git", mirrorPath: directory + "/mirror",
                                       deadlines: Self.deadlines(list: 3, fetch: 60))
            Self.expectDeadline(.list, after: 3, remote: "127.0.0.1:\(suitePorts[11])") {
                try ledger.remoteRefs(fetching: { _ in ["refs/heads/main"] })
            }
        }
    }

    /// The listing arrived at once but the pack after it is slow (a big main on a slow link): the
    /// refs it picked are fetched on their own connection under the fetch's deadline, and the poll
    /// returns the listing it had. The proxy drips only the first connection's pack.
    @Test func aSlowPackAfterTheListingIsFetchedOnItsOwnUnderTheFetchDeadline() throws {
        try LedgerTransport.gitDaemon.withRemote(port: suitePorts[12]) { _, bare, directory in
            try Self.populate(bare, in: directory)
            let hex = try LedgerFixtures.git(["rev-parse", "refs/heads/main"], in: bare).trimmingCharacters(in: .whitespacesAndNewlines)
            let main = try #require(GitOID(hex: hex))
            let proxy = try DripProxy(port: suitePorts[13], upstreamPort: suitePorts[12], mode: .afterTheAdvertisementOnce,
                                      directory: directory)
            defer { proxy.stop() }
            let ledger = try GitLedger(remote: "git://127.0.0.1:\(suitePorts[13])/grid.git", mirrorPath: directory + "/mirror",
                                       deadlines: Self.deadlines(list: 3, fetch: 60))
            let started = Date()
            let refs = try ledger.remoteRefs(fetching: { _ in ["refs/heads/main"] })
            let elapsed = Date().timeIntervalSince(started)
            #expect(FileManager.default.fileExists(atPath: proxy.drippingPath), "the first pack was not dripped: the test proves nothing")
            #expect(refs["refs/heads/main"] == main)
            #expect(refs.count == 7, "\(refs.keys.sorted())")
            #expect(ledger.hasObject(main))
            #expect(elapsed >= 2.5 && elapsed < 3 + Self.slack + 5, "took \(elapsed) s")
        }
    }

    @Test func aDrippingPushFailsAtItsDeadlineAndMovesNothing() throws {
        try LedgerTransport.gitDaemon.withRemote(port: suitePorts[8]) { _, bare, directory in
            let proxy = try DripProxy(port: suitePorts[9], upstreamPort: suitePorts[8], mode: .everyConnection, directory: directory)
            defer { proxy.stop() }
            let ledger = try GitLedger(remote: "git://127.0.0.1:\(suitePorts[9])/grid.git", mirrorPath: directory + "/mirror",
                                       deadlines: Self.deadlines(push: 3))
            let commit = try ledger.commit(parent: nil, changes: [LedgerChange(path: "claim.json", content: [0x7b, 0x7d])],
                                           message: "claim")
            Self.expectDeadline(.push, after: 3, remote: "127.0.0.1:\(suitePorts[9])") {
                try ledger.createRef("refs/dgrid/claims/t1", target: commit)
            }
            #expect(try LedgerFixtures.git(["for-each-ref", "refs/dgrid/"], in: bare).isEmpty)
        }
    }

    /// A local fetch never goes through a socket: dgrid's local fetch checks the
    /// deadline between steps and in the packbuilder's progress callback.
    @Test func aLocalFetchPastItsDeadlineIsAbortedByTheProgressCallback() throws {
        try LedgerTransport.file.withRemote(port: 0) { url, _, directory in
            let writer = try LedgerFixtures.ledger(url, in: directory, name: "writer")
            // Enough objects that the transfer outlasts a millisecond.
            let changes = (0..<3000).map { LedgerChange(path: "d\($0 % 30)/f\($0)", content: LedgerFixtures.bytes("blob \($0)")) }
            let commit = try writer.commit(parent: nil, changes: changes, message: "many")
            #expect(try writer.createRef("refs/heads/main", target: commit) == .applied)

            let reader = try GitLedger(remote: url, mirrorPath: directory + "/reader", deadlines: Self.deadlines(fetch: 0.001))
            #expect {
                try reader.fetch(["refs/heads/main"])
            } throws: { error in
                (error as? LedgerError)?.deadlineExceeded == .fetch
            }
            // With room, the same fetch goes through.
            let patient = try GitLedger(remote: url, mirrorPath: directory + "/reader")
            try patient.fetch(["refs/heads/main"])
            #expect(patient.hasObject(commit))
        }
    }

    @Test func deadlineSettingsParseAndRefuseNonsense() throws {
        #expect(try GitDeadlines(parsing: "list=5,push=7.5") == GitDeadlines(list: 5, fetch: 300, push: 7.5))
        #expect(try GitDeadlines(parsing: "") == GitDeadlines())
        #expect(GitDeadlines().description == "list=30,fetch=300,push=60")
        for bad in ["list", "list=0", "list=-1", "pull=5", "fetch=abc", "push=inf", "list=100000"] {
            #expect(throws: DeadlineParseError.self, "\(bad)") { try GitDeadlines(parsing: bad) }
        }
    }
}
