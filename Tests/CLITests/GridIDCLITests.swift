import Foundation
import Testing
import TestSupport

/// A grid's id (docs/ARCHITECTURE.md §9): fixed by `dgrid init`, printed, kept in
/// `.dgrid/grid.json` on main, shown by `status`; a grid made by D-GRID's own
/// tools gets one from `dgrid init`, once.
@Suite(.system, .serialized)
struct GridIDCLITests {
    static func gridID(in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix("grid id: ") }.map { String($0.dropFirst("grid id: ".count).prefix(34)) }
    }

    @Test func initFixesAnIDThatStatusShowsAndReinitKeeps() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let home = try ImageCLITests.Home()
        let url = "file://" + repo
        let first = try home.dgrid("init", "--repo", url)
        #expect(first.status == 0, "\(first.stderr)")
        let id = try #require(Self.gridID(in: first.stdout), "\(first.stdout)")
        #expect(id.range(of: "^g-[0-9a-f]{32}$", options: .regularExpression) != nil, "\(id)")
        #expect(try GridFixture.show(repo, ".dgrid/grid.json") == "{\"grid_id\":\"\(id)\"}\n")
        #expect(try GridFixture.status(home, url)["grid_id"] as? String == id)
        let again = try home.dgrid("init", "--repo", url)
        #expect(Self.gridID(in: again.stdout) == id && !again.stdout.contains("new:"), "\(again.stdout)")
        // Another grid gets another id.
        let other = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let otherID = Self.gridID(in: try home.dgrid("init", "--repo", "file://" + other).stdout)
        #expect(otherID != nil && otherID != id)
    }

    @Test func aGridMadeElsewhereGetsAnIDOnce() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        // D-GRID's layout, made with git alone.
        let work = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-dgrid-made-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: work) }
        for dir in ["tasks/queue", "tasks/completed", "nodes"] {
            try FileManager.default.createDirectory(atPath: work + "/" + dir, withIntermediateDirectories: true)
            try Data().write(to: URL(fileURLWithPath: work + "/" + dir + "/.gitkeep"))
        }
        for args in [["init", "-q", "-b", "main", work], ["-C", work, "add", "-A"],
                     ["-C", work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "D-GRID"],
                     ["-C", work, "push", "-q", repo, "main"]] {
            let r = try GridFixture.git(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        let home = try ImageCLITests.Home()
        let url = "file://" + repo
        #expect(try GridFixture.status(home, url)["grid_id"] == nil, "no id before dgrid init")
        #expect(try home.dgrid("status", "--repo", url).stdout.contains("grid id: none (run dgrid init"))
        let added = try home.dgrid("init", "--repo", url)
        #expect(added.status == 0 && added.stdout.contains("already a grid") && added.stdout.contains("(new: this grid had none)"), "\(added.stdout)")
        let id = try #require(Self.gridID(in: added.stdout))
        #expect(try GridFixture.mainFiles(repo).contains(".dgrid/grid.json"))
        #expect(Self.gridID(in: try home.dgrid("init", "--repo", url).stdout) == id, "kept on the next init")
    }
}
