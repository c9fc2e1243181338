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
