import Foundation
import Testing
@testable import Runner
import TestSupport

/// The mirror is a cache; the remote is the truth. A mirror whose files are damaged
/// is moved aside and rebuilt from the remote by the next operation, which then
/// succeeds with the right content.
@Suite(.system) struct LedgerMirrorRepairTests {
    enum Damage: String, CaseIterable, CustomTestStringConvertible, Sendable {
        /// The pack fetch wrote, with its middle overwritten.
        case garbledPack
        /// The pack cut short (its index still lists every object).
        case truncatedPack
        /// HEAD deleted.
        case missingHEAD
        /// config overwritten with garbage: libgit2 cannot open the repository.
        case garbledConfig
        /// A loose object (the worker's own writes) with its middle flipped.
        case garbledLooseObject
        /// A loose object cut in half: libgit2 1.5 alone would spin on it forever.
        case truncatedLooseObject

        /// Whether the damage is to the writer's own (loose) objects rather than to what it fetched.
        var isLoose: Bool { self == .garbledLooseObject || self == .truncatedLooseObject }

        var testDescription: String { rawValue }
    }

    static let files: [String: [UInt8]] = [
        "tasks/queue/t1.json": LedgerFixtures.bytes("{\"task_id\":\"t1\",\"script\":\"echo one\"}"),
        "tasks/queue/t2.json": Array((0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / 251) }),
        "nodes/n1.json": LedgerFixtures.bytes("{\"node_id\":\"n1\"}"),
    ]

    /// Loose objects are the worker's own writes (fetches arrive as packs): on
    /// them libgit2 1.5 alone would corrupt its heap (garbled) or spin forever
    /// (truncated), so the ledger checks them before libgit2 reads them
    /// (`LooseObjectCheck`); a damaged one is found when the mirror is opened.
    @Test(arguments: Damage.allCases)
    func corruptMirrorIsRebuiltFromTheRemote(damage: Damage) throws {
        try LedgerTransport.file.withRemote(port: 0) { url, _, directory in
            let writerPath = directory + "/writer", readerPath = directory + "/reader"
            var commit = GitOID.zero
            // Scoped: no ledger holds the mirror's files open (or mapped) while they are damaged.
            do {
                let writer = try GitLedger(remote: url, mirrorPath: writerPath)
                commit = try writer.commit(parent: nil, changes: Self.files.map { LedgerChange(path: $0.key, content: $0.value) },
                                           message: "submit")
                #expect(try writer.createRef("refs/heads/main", target: commit) == .applied)
                let reader = try GitLedger(remote: url, mirrorPath: readerPath)
                try reader.fetch(["refs/heads/main"])
                #expect(try reader.tree(of: commit).count == Self.files.count)
            }
            let mirror = damage.isLoose ? writerPath : readerPath
            try Self.damage(damage, mirror: mirror, commit: commit)

            // A fresh ledger on the damaged mirror, as after a worker restart.
            let ledger = try GitLedger(remote: url, mirrorPath: mirror)
            #expect(try ledger.remoteRefs(prefix: "refs/heads/") == ["refs/heads/main": commit])
            try ledger.fetch(["refs/heads/main"])
            let tree = try ledger.tree(of: commit)
            #expect(Set(tree.keys) == Set(Self.files.keys))
            for (path, content) in Self.files {
                let id = try #require(tree[path])
                #expect(try ledger.blob(id, limit: 1 << 20) == content, "\(path)")
            }
            if damage == .missingHEAD {
                // libgit2 recreates HEAD in place; the objects were never damaged.
                #expect(ledger.mirrorRebuilds.isEmpty, "\(ledger.mirrorRebuilds)")
            } else {
                let notes = ledger.mirrorRebuilds
                #expect(notes.count == 1, "\(notes)")
                #expect(notes.first?.contains(mirror + ".corrupt") == true, "\(notes)")
                #expect(FileManager.default.fileExists(atPath: mirror + ".corrupt"))
            }
            // The rebuilt mirror serves writes too.
            let next = try ledger.commit(parent: commit, changes: [LedgerChange(path: "nodes/n1.json", content: nil)],
                                         message: "fold")
            #expect(try ledger.updateRef("refs/heads/main", from: commit, to: next) == .applied)
        }
    }

    /// A missing object is not corruption: no rebuild, the usual "fetch first" error.
    @Test func missingObjectIsNotRebuilt() throws {
        try LedgerTransport.file.withRemote(port: 0) { url, _, directory in
            let ledger = try GitLedger(remote: url, mirrorPath: directory + "/mirror")
            let error = try #require(throws: LedgerError.self) {
                try ledger.tree(of: try #require(GitOID(hex: "0123456789abcdef0123456789abcdef01234567")))
            }
            #expect(error.kind == .object)
            #expect(ledger.mirrorRebuilds.isEmpty)
        }
    }

    static func damage(_ damage: Damage, mirror: String, commit: GitOID) throws {
        func pack() throws -> String {
            let packs = try FileManager.default.contentsOfDirectory(atPath: mirror + "/objects/pack")
                .filter { $0.hasSuffix(".pack") }
            return mirror + "/objects/pack/" + (try #require(packs.first, "the fetch wrote no pack"))
        }
        switch damage {
        case .garbledPack:
            try overwrite(try pack(), fraction: 0.5, count: 256)
        case .truncatedPack:
            let path = try pack()
            let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            try truncate(path, to: size / 3)
        case .missingHEAD:
            try FileManager.default.removeItem(atPath: mirror + "/HEAD")
        case .garbledConfig:
            try Data("[core\n\u{1}\u{2} = = =\n".utf8).write(to: URL(fileURLWithPath: mirror + "/config"))
        case .garbledLooseObject, .truncatedLooseObject:
            // The commit itself: every read of main starts there.
            let path = mirror + "/objects/" + commit.hex.prefix(2) + "/" + commit.hex.dropFirst(2)
            let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            if damage == .truncatedLooseObject {
                try truncate(path, to: size / 2)
            } else {
                try overwrite(path, fraction: 0.4, count: 24)
            }
        }
    }

    static func truncate(_ path: String, to size: Int) throws {
        // Loose objects and packs are read-only (0444); root can still write them.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(size))
    }

    static func overwrite(_ path: String, fraction: Double, count: Int) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        let offset = UInt64(Double(size) * fraction)
        try handle.seek(toOffset: offset)
        let original = try handle.read(upToCount: count) ?? Data()
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(original.map { $0 ^ 0x5a }))
    }
}
