import Foundation
import Testing
import TestSupport

/// `git init --bare` names `master` (Git's default), the grid lives on main:
/// `dgrid init` points HEAD at main where it can, so `git clone` checks out
/// the grid, and says how where it cannot (a server's HEAD).
@Suite(.system, .serialized) struct GridInitHeadCLITests {
    static func masterBare(_ base: String) throws -> String {
        let path = base + "/grid.git"
        let made = try GridFixture.git(["init", "--bare", "-q", "--initial-branch=master", path])
        try #require(made.status == 0, "\(made.stderr)")
        return path
    }

    static func cloneFiles(_ url: String, into work: String) throws -> [String] {
        let cloned = try GridFixture.git(["clone", "-q", url, work])
        #expect(cloned.status == 0, "\(cloned.stderr)")
        let listed = try GridFixture.git(["-C", work, "ls-files"])
        return listed.stdout.split(separator: "\n").map(String.init)
    }

    @Test(arguments: ["path", "file://"])
    func aBareRepositoryClonesToTheGrid(spelling: String) throws {
        let base = try TempDir.make(prefix: "dgrid-init-head").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let bare = try Self.masterBare(base)
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let url = spelling == "path" ? bare : "file://" + bare
        let initialised = try home.dgrid("init", "--repo", url)
        #expect(initialised.status == 0, "\(initialised.stderr)")
        #expect(initialised.stdout.contains("HEAD now names main"), "\(initialised.stdout)")
        #expect(try GridFixture.git(["-C", bare, "symbolic-ref", "HEAD"]).stdout == "refs/heads/main\n")
        let files = try Self.cloneFiles(bare, into: base + "/clone")
        #expect(files.contains("tasks/queue/.gitkeep") && files.contains("README.md"), "the clone checked out \(files)")
        // Again: nothing left to do, nothing said about HEAD.
        let again = try home.dgrid("init", "--repo", url)
        #expect(again.status == 0 && again.stdout.contains("is already a grid") && !again.stdout.contains("HEAD"), "\(again.stdout)")
    }

    /// A HEAD naming a branch with commits is someone's choice: left, and said.
    @Test func aHeadOnABranchWithCommitsIsLeftAlone() throws {
        let base = try TempDir.make(prefix: "dgrid-init-head").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let bare = try Self.masterBare(base)
        let work = base + "/work"
        #expect(try GridFixture.git(["init", "-q", "--initial-branch=master", work]).status == 0)
        let identity = ["-c", "user.name=t", "-c", "user.email=t@localhost", "-C", work]
        #expect(try GridFixture.git(identity + ["commit", "-q", "--allow-empty", "-m", "theirs"]).status == 0)
        #expect(try GridFixture.git(identity + ["push", "-q", bare, "master"]).status == 0)
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let initialised = try home.dgrid("init", "--repo", bare)
        #expect(initialised.status == 0, "\(initialised.stderr)")
        #expect(initialised.stderr.contains("HEAD names refs/heads/master, not main"), "\(initialised.stderr)")
        #expect(try GridFixture.git(["-C", bare, "symbolic-ref", "HEAD"]).stdout == "refs/heads/master\n")
    }

    /// Over git://, HEAD is the server's: the output says how to move it.
    @Test func aServersHeadGetsInstructions() throws {
        let base = try TempDir.make(prefix: "dgrid-init-head").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        _ = try Self.masterBare(base)
        let script = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        let port = try FreePort.loopback()
        try #require(try ProcessRunner.run(script, ["start", base, "\(port)"]).status == 0)
        defer { _ = try? ProcessRunner.run(script, ["stop", base]) }
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let url = "git://127.0.0.1:\(port)/grid.git"
        let initialised = try home.dgrid("init", "--repo", url)
        #expect(initialised.status == 0, "\(initialised.stderr)")
        #expect(initialised.stderr.contains("symbolic-ref HEAD refs/heads/main"), "\(initialised.stderr)")
        // Once the administrator has moved it, nothing is said.
        #expect(try GridFixture.git(["-C", base + "/grid.git", "symbolic-ref", "HEAD", "refs/heads/main"]).status == 0)
        let again = try home.dgrid("init", "--repo", url)
        #expect(again.status == 0 && !again.stderr.contains("HEAD"), "\(again.stderr)")
        #expect(try Self.cloneFiles(url, into: base + "/clone").contains("tasks/queue/.gitkeep"))
    }
}
