import Foundation
import Testing
@testable import Runner
import TestSupport

/// Trees, blobs and commits in the mirror: no working tree, no remote needed.
@Suite(.unit) struct LedgerObjectTests {
    @Test func commitWithNestedPathsReadsBackAndDeletesPruneDirectories() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bare = try LedgerFixtures.bareRepository(in: directory)
        let ledger = try LedgerFixtures.ledger(bare, in: directory)

        let first = try ledger.commit(parent: nil, changes: [
            LedgerChange(path: "nodes/n1.json", content: LedgerFixtures.bytes("{\"node_id\":\"n1\"}")),
            LedgerChange(path: "tasks/queue/5/ab/t1.json", content: LedgerFixtures.bytes("task one")),
            LedgerChange(path: "tasks/queue/5/ab/t2.json", content: LedgerFixtures.bytes("task two")),
            LedgerChange(path: "tasks/queue/t3.json", content: []),
        ], message: "first")
        let files = try ledger.tree(of: first)
        #expect(Set(files.keys) == ["nodes/n1.json", "tasks/queue/5/ab/t1.json", "tasks/queue/5/ab/t2.json",
                                    "tasks/queue/t3.json"])
        #expect(try ledger.blob(#require(files["tasks/queue/5/ab/t1.json"]), limit: 100) == LedgerFixtures.bytes("task one"))
        #expect(try ledger.blob(#require(files["tasks/queue/t3.json"]), limit: 0) == [])

        // Move t1 to completed/, replace t2, delete t3 and a path that never existed.
        let second = try ledger.commit(parent: first, changes: [
            LedgerChange(path: "tasks/queue/5/ab/t1.json", content: nil),
            LedgerChange(path: "tasks/completed/n1-t1.json", content: LedgerFixtures.bytes("task one")),
            LedgerChange(path: "tasks/completed/n1-t1.json.log", content: LedgerFixtures.bytes("{\"exit_code\":0}")),
            LedgerChange(path: "tasks/queue/5/ab/t2.json", content: LedgerFixtures.bytes("task two, edited")),
            LedgerChange(path: "tasks/queue/t3.json", content: nil),
            LedgerChange(path: "tasks/queue/never.json", content: nil),
        ], message: "fold")
        let after = try ledger.tree(of: second)
        #expect(Set(after.keys) == ["nodes/n1.json", "tasks/completed/n1-t1.json", "tasks/completed/n1-t1.json.log",
                                    "tasks/queue/5/ab/t2.json"])
        #expect(after["tasks/completed/n1-t1.json"] == files["tasks/queue/5/ab/t1.json"], "same content, same blob")

        // Deleting the last file of a directory chain removes the whole chain.
        let third = try ledger.commit(parent: second, changes: [
            LedgerChange(path: "tasks/queue/5/ab/t2.json", content: nil),
        ], message: "drain")
        #expect(Set(try ledger.tree(of: third).keys) == ["nodes/n1.json", "tasks/completed/n1-t1.json",
                                                          "tasks/completed/n1-t1.json.log"])
        // The git CLI agrees: no empty tasks/queue tree was written, the parent chain
        // is right and the author is dgrid's.
        let mirror = directory + "/mirror"
        #expect(try LedgerFixtures.git(["ls-tree", "--name-only", third.hex, "tasks/"], in: mirror) == "tasks/completed")
        #expect(try LedgerFixtures.git(["rev-parse", "\(third.hex)^", "\(third.hex)^^"], in: mirror)
            == "\(second.hex)\n\(first.hex)")
        #expect(try LedgerFixtures.git(["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", third.hex], in: mirror)
            == "dgrid <dgrid@localhost>|dgrid <dgrid@localhost>|drain")
        try LedgerFixtures.git(["fsck", "--strict", "--no-dangling"], in: mirror)
    }

    @Test func authorCanBeNamed() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try LedgerFixtures.ledger(try LedgerFixtures.bareRepository(in: directory), in: directory)
        let commit = try ledger.commit(parent: nil, changes: [LedgerChange(path: "a", content: [1])], message: "m",
                                       author: LedgerSignature(name: "node-7", email: "node-7@grid"))
        #expect(try LedgerFixtures.git(["log", "-1", "--format=%an <%ae>", commit.hex], in: directory + "/mirror")
            == "node-7 <node-7@grid>")
    }

    @Test(arguments: [
        "", "/etc/passwd", "a//b", "a/", "./a", "a/./b", "../escape", "a/../../b", "a/..",
        "nul\u{0}byte", "new\nline", "tab\there", "esc\u{1b}[2J", "del\u{7f}", ".git/config", "a/.GIT/hooks/x",
        String(repeating: "x", count: 2000),
    ])
    func hostilePathsAreRefused(path: String) throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try LedgerFixtures.ledger(try LedgerFixtures.bareRepository(in: directory), in: directory)
        let error = try #require(throws: LedgerError.self) {
            try ledger.commit(parent: nil, changes: [LedgerChange(path: path, content: [1])], message: "bad")
        }
        #expect(error.kind == .invalidInput)
        #expect(!error.description.contains("\n"), "control characters are shown escaped, not raw")
        // Deletes are validated too.
        #expect(throws: LedgerError.self) {
            try ledger.commit(parent: nil, changes: [LedgerChange(path: path, content: nil)], message: "bad")
        }
    }

    @Test func conflictingChangesAreRefused() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try LedgerFixtures.ledger(try LedgerFixtures.bareRepository(in: directory), in: directory)
        let base = try ledger.commit(parent: nil, changes: [LedgerChange(path: "dir/file", content: [1])], message: "base")
        let cases: [[LedgerChange]] = [
            [LedgerChange(path: "x", content: [1]), LedgerChange(path: "x", content: nil)],        // twice
            [LedgerChange(path: "y", content: [1]), LedgerChange(path: "y/z", content: [2])],      // file and dir
            [LedgerChange(path: "dir", content: [1])],                                             // over a directory
            [LedgerChange(path: "dir/file/sub", content: [1])],                                    // under a file
            [LedgerChange(path: "dir", content: nil)],                                             // delete a directory
        ]
        for changes in cases {
            let error = try #require(throws: LedgerError.self) {
                try ledger.commit(parent: base, changes: changes, message: "conflict")
            }
            #expect(error.kind == .invalidInput)
        }
    }

    @Test func blobOverTheLimitIsRefusedAndObjectsAreTyped() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try LedgerFixtures.ledger(try LedgerFixtures.bareRepository(in: directory), in: directory)
        let big = [UInt8](repeating: 0x41, count: 64 * 1024 + 1)
        let commit = try ledger.commit(parent: nil, changes: [LedgerChange(path: "big", content: big)], message: "big")
        let id = try #require(try ledger.tree(of: commit)["big"])
        let error = try #require(throws: LedgerError.self) { try ledger.blob(id, limit: 64 * 1024) }
        #expect(error.kind == .object)
        #expect(error.description.contains("65537 bytes"))
        #expect(try ledger.blob(id, limit: big.count) == big)
        // A commit id is not a blob; an unknown id is not in the mirror.
        #expect(throws: LedgerError.self) { try ledger.blob(commit, limit: 1 << 20) }
        let missing = try #require(GitOID(hex: String(repeating: "ab", count: 20)))
        #expect(throws: LedgerError.self) { try ledger.blob(missing, limit: 1 << 20) }
        #expect(throws: LedgerError.self) { try ledger.tree(of: missing) }
    }

    @Test func objectIDsAreParsedOnce() {
        #expect(GitOID(hex: "ABCDEF0123456789abcdef0123456789ABCDEF01")?.hex == "abcdef0123456789abcdef0123456789abcdef01")
        #expect(GitOID(hex: String(repeating: "g", count: 40)) == nil)
        #expect(GitOID(hex: String(repeating: "a", count: 39)) == nil)
        #expect(GitOID(hex: String(repeating: "a", count: 41)) == nil)
        #expect(GitOID.zero.isZero)
    }
}
