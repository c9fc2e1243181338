import Foundation
import Testing
@testable import Runner
import TestSupport

/// Main's finished folders are read as their trees' entries, by bytes
/// (`MainFiles`, `FinishedIndex`, docs/ARCHITECTURE.md §10). Names are a hostile
/// writer's: whatever the names, the byte reading must say what reading every
/// path as a string says.
@Suite(.unit) struct MainFilesTests {
    /// The string reading the byte reading replaces: every path's `GridSnapshot.finishedTaskID`.
    static func reference(_ paths: [String]) -> [String: [String]] {
        var byTask: [String: [String]] = [:]
        for path in paths where path.hasSuffix(".json") {
            if let id = GridSnapshot.finishedTaskID(path) { byTask[id, default: []].append(path) }
        }
        return byTask.mapValues { $0.sorted() }
    }

    static func oid(_ index: Int) -> GitOID {
        GitOID(hex: String(format: "%040x", index))!
    }

    @Test func hostileNamesReadByBytesAsByStrings() {
        // Pieces a writer might put in a name: dashes, dots, ".lock", a combining mark, NUL-free bytes Git allows.
        let pieces = ["w1", "-", "job", "7", ".", "..", ".json", ".log", ".sig", ".lock", "é", "\u{301}", "x_y", "", "A", "-"]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<40 {
            var paths: Set<String> = []
            for _ in 0..<200 {
                let name = (0..<Int.random(in: 1...6, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
                    + [".json", ".json", ".json.log", ""].randomElement(using: &generator)!
                let folder = ["tasks/completed/", "tasks/failed/", "tasks/rejected/", "tasks/completed/sub/", "tasks/in_progress/"]
                    .randomElement(using: &generator)!
                paths.insert(folder + name)
            }
            paths.formUnion(["tasks/completed/w1-job-7.json", "tasks/failed/w2-job-7.json", "tasks/rejected/job-7.json",
                             "tasks/completed/n.lock-x.json", "tasks/completed/-x.json", "tasks/rejected/a..b.json"])
            let files = Dictionary(uniqueKeysWithValues: paths.sorted().enumerated().map { ($0.element, Self.oid($0.offset)) })
            let main = MainFiles(files)
            // Every path found under its own id, none twice, nothing else.
            #expect(main.count == files.count)
            #expect(Set(main.paths) == Set(files.keys))
            for (path, blob) in files { #expect(main[path] == blob, "round \(round): \(path.debugDescription)") }
            #expect(main["tasks/completed/absent.json"] == nil && main["tasks/completed/"] == files["tasks/completed/"])

            let index = FinishedIndex(main), expected = Self.reference(Array(paths))
            #expect(Set(index.taskIDs) == Set(expected.keys), "round \(round)")
            #expect(index.count == expected.count)
            for (id, paths) in expected { #expect(index.paths(of: id) == paths) }
            #expect(index.fingerprint == expected.keys.reduce(0) { $0 &+ FinishedIndex.hash(of: $1) })
            for id in ["7", "ob-7", "job", "job-7.json", "", "-", "x"] where expected[id] == nil {
                #expect(!index.contains(id) && index.paths(of: id).isEmpty)
            }
        }
    }

    @Test func idsThatShareBytesStayApart() {
        // Many ids, each a prefix or suffix of others: the table compares whole ids.
        var files: [String: GitOID] = [:]
        for index in 0..<5_000 { files["tasks/completed/w\(index % 7)-t\(index).json"] = Self.oid(index) }
        let finished = FinishedIndex(MainFiles(files))
        #expect(finished.count == 5_000)
        #expect(finished.contains("t0") && finished.contains("t4999") && !finished.contains("t5000") && !finished.contains("t"))
        #expect(finished.paths(of: "t12") == ["tasks/completed/w5-t12.json"])
    }

    /// libgit2 reads a tree whatever order its entries come in; a writer can craft one
    /// out of order (`git hash-object --literally`). Lookups by name must still find each.
    @Test func aCraftedUnsortedFolderIsReadWhole() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try LedgerFixtures.ledger(try LedgerFixtures.bareRepository(in: directory), in: directory)
        let seed = try ledger.commit(parent: nil, changes: [
            LedgerChange(path: "nodes/w1.json", content: LedgerFixtures.bytes("{}")),
            LedgerChange(path: "tasks/completed/keep.txt", content: LedgerFixtures.bytes("one")),
        ], message: "seed")
        let mirror = directory + "/mirror"
        let blob = try LedgerFixtures.git(["rev-parse", "\(seed.hex):nodes/w1.json"], in: mirror)
        let blobBytes = stride(from: 0, to: 40, by: 2).map { UInt8(blob.dropFirst($0).prefix(2), radix: 16)! }
        // Entries in reverse name order, one named twice.
        var raw: [UInt8] = []
        for name in ["w9-z.json", "w3-c.json", "w2-b.json", "w1-a.json.log", "w1-a.json", "w1-a.json"] {
            raw += Array("100644 \(name)".utf8) + [0] + blobBytes
        }
        let rawFile = directory + "/tree.raw"
        FileManager.default.createFile(atPath: rawFile, contents: Data(raw))
        let crafted = try LedgerFixtures.git(["hash-object", "-t", "tree", "--literally", "-w", rawFile], in: mirror)
        let tasks = try mktree(["040000 tree \(crafted)\tcompleted"], in: mirror, directory: directory)
        let nodes = try LedgerFixtures.git(["rev-parse", "\(seed.hex):nodes"], in: mirror)
        let root = try mktree(["040000 tree \(nodes)\tnodes", "040000 tree \(tasks)\ttasks"], in: mirror, directory: directory)
        let commit = try #require(GitOID(hex: try LedgerFixtures.git(["commit-tree", root, "-m", "crafted"], in: mirror)))

        let paths = try ledger.tree(of: commit)
        let main = MainFiles(listing: try ledger.listing(of: commit, keepingAsEntries: Set(MainFiles.entryFolders)))
        #expect(main.others.keys.sorted() == ["nodes/w1.json"])
        #expect(Set(main.paths) == Set(paths.keys))
        for (path, id) in paths { #expect(main[path] == id, "\(path)") }
        #expect(Set(FinishedIndex(main).taskIDs) == ["a", "b", "c", "z"])
    }

    private func mktree(_ lines: [String], in mirror: String, directory: String) throws -> String {
        let input = directory + "/mktree.in"
        FileManager.default.createFile(atPath: input, contents: Data((lines.joined(separator: "\n") + "\n").utf8))
        let result = try ProcessRunner.run("/bin/sh", ["-c", "git -C \"$0\" mktree < \"$1\"", mirror, input],
                                           environment: ["GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"])
        guard result.status == 0 else { throw FixtureError("git mktree: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
