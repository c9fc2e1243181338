import Foundation
import Testing
@testable import Runner
import TestSupport

/// A worker killed between taking a ref's lock and renaming it leaves
/// `<ref>.lock` in a local grid; git would refuse that ref forever.
@Suite(.unit) struct LedgerStaleLockTests {
    @Test func staleLockOnMainIsRemovedAndTheNextAttemptApplies() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bare = try LedgerFixtures.bareRepository(in: directory)
        let ledger = try LedgerFixtures.ledger("file://" + bare, in: directory, credentials: .none, name: "a")
        let name = "refs/heads/main"
        let base = try ledger.commit(parent: nil, changes: [LedgerChange(path: "a", content: [1])], message: "base")
        #expect(try ledger.createRef(name, target: base) == .applied)
        let next = try ledger.commit(parent: base, changes: [LedgerChange(path: "a", content: [2])], message: "next")

        // A fresh lock is a live writer: refused, and left alone.
        let lock = bare + "/" + name + ".lock"
        FileManager.default.createFile(atPath: lock, contents: Data())
        #expect(try ledger.updateRef(name, from: base, to: next) != .applied)
        #expect(FileManager.default.fileExists(atPath: lock))

        // An old one is a dead writer's: this attempt removes it, the next applies.
        var times = [timespec(tv_sec: time(nil) - 120, tv_nsec: 0), timespec(tv_sec: time(nil) - 120, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, lock, &times, 0) == 0)
        #expect(try ledger.updateRef(name, from: base, to: next) != .applied)
        #expect(!FileManager.default.fileExists(atPath: lock))
        #expect(try ledger.updateRef(name, from: base, to: next) == .applied)
        #expect(try LedgerFixtures.git(["rev-parse", name], in: bare) == next.hex)
    }
}

/// Two processes sharing one home fetch into one mirror: the second meets the
/// first's ref lock, in either of libgit2's two words for it, and fetches again.
@Suite(.unit) struct LedgerMirrorLockRaceTests {
    func error(_ message: String, gitClass: Int32 = 2, code: Int32 = -1) -> LedgerError {
        LedgerError(.network, operation: "fetch refs/heads/main", remote: "git://127.0.0.1/grid.git",
                    message: message, hint: "", gitClass: gitClass, gitCode: code)
    }

    @Test func bothLockMessagesAreARaceToRetry() {
        #expect(GitLedger.isMirrorRefLocked(error("failed to lock file '/m/refs/heads/main.lock' for writing", code: -14)))
        #expect(GitLedger.isMirrorRefLocked(error("failed to create locked file '/m/refs/heads/main.lock': File exists")))
    }

    @Test func otherFailuresAreNot() {
        #expect(!GitLedger.isMirrorRefLocked(error("failed to create locked file '/m/refs/heads/main.lock': No space left on device")))
        #expect(!GitLedger.isMirrorRefLocked(error("unexpected http status code: 500")))
    }
}
