import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxIsolation
@testable import SandboxSupport

/// The state directory as another user on the host would attack it: a symlink
/// in its place, a directory of theirs, a parent they can write. Each is
/// refused with the path and what to do, and nothing is written there.
@Suite(.system, .serialized, .enabled(if: geteuid() == 0, "needs root to make directories of another owner"))
struct StateDirectoryTests {
    /// `nobody`: owns nothing on a Debian system.
    let otherUID: uid_t = 65534

    private func scratch() throws -> String {
        try TempDir.make(prefix: "dgrid-state-test").path
    }

    private func entries(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }

    private func problem(_ state: String, _ relative: String = "cache/seccomp") -> StateDirectoryError? {
        do {
            _ = try StateDirectory(path: state).directory(relative)
            return nil
        } catch {
            return error
        }
    }

    @Test func aFreshStateDirectoryIsMadePrivate() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let made = try StateDirectory(path: base + "/home").directory("cache/seccomp")
        #expect(made == base + "/home/cache/seccomp")
        for path in [base + "/home", base + "/home/cache", made] {
            var info = stat()
            #expect(lstat(path, &info) == 0)
            #expect(info.st_mode & 0o7777 == 0o700, "\(path)")
        }
        // Under a sticky, world-writable parent (the test's own /tmp) it is accepted.
        #expect(try StateDirectory(path: base + "/home").directory("cache/seccomp") == made)
    }

    @Test func aStateDirectoryThatIsASymlinkIsRefused() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let target = base + "/elsewhere"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        #expect(symlink(target, base + "/home") == 0)

        let error = try #require(problem(base + "/home"))
        #expect(error.problem == .symbolicLink)
        #expect(error.path == base + "/home")
        #expect(error.description.contains("DGRID_HOME"))
        #expect(entries(target).isEmpty, "wrote through the symlink: \(entries(target))")
    }

    @Test func aSymlinkInsideTheStateDirectoryIsRefused() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let target = base + "/elsewhere"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        _ = try StateDirectory(path: base + "/home").directory("")
        #expect(symlink(target, base + "/home/cache") == 0)

        let error = try #require(problem(base + "/home"))
        #expect(error.problem == .symbolicLink)
        #expect(error.path == base + "/home/cache")
        #expect(entries(target).isEmpty)
    }

    @Test func aStateDirectoryOfAnotherUserIsRefused() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let home = base + "/home"
        #expect(mkdir(home, 0o700) == 0 && chown(home, otherUID, otherUID) == 0)

        let error = try #require(problem(home))
        #expect(error.problem == .ownedByAnotherUser(uid: otherUID))
        #expect(error.description.contains(home) && error.description.contains("uid \(otherUID)"))
        #expect(entries(home).isEmpty)
    }

    @Test func aSubdirectoryOfAnotherUserIsRefused() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        _ = try StateDirectory(path: base + "/home").directory("cache")
        #expect(chown(base + "/home/cache", otherUID, otherUID) == 0)

        let error = try #require(problem(base + "/home"))
        #expect(error.problem == .ownedByAnotherUser(uid: otherUID))
        #expect(error.path == base + "/home/cache")
        #expect(entries(base + "/home/cache").isEmpty)
    }

    @Test(arguments: [0o770, 0o777, 0o1777] as [mode_t])
    func aStateDirectoryOthersCanWriteIsRefused(mode: mode_t) throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let home = base + "/home"
        #expect(mkdir(home, 0o700) == 0 && chmod(home, mode) == 0)

        let error = try #require(problem(home))
        #expect(error.problem == .writableByOthers(mode: UInt32(mode)))
        #expect(error.description.contains("chmod 700 \(home)"))
        #expect(entries(home).isEmpty)
    }

    @Test(arguments: [0o775, 0o777] as [mode_t])
    func aParentOthersCanWriteIsRefused(mode: mode_t) throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let shared = base + "/shared"
        #expect(mkdir(shared, 0o755) == 0 && chmod(shared, mode) == 0)

        // Neither an existing state directory below it nor a new one.
        #expect(mkdir(shared + "/existing", 0o700) == 0)
        for home in [shared + "/existing", shared + "/new"] {
            let error = try #require(problem(home))
            #expect(error.problem == .untrustedParent(uid: 0, mode: UInt32(mode)))
            #expect(error.path == shared)
        }
        #expect(entries(shared) == ["existing"])
        #expect(entries(shared + "/existing").isEmpty)
    }

    @Test func aParentOfAnotherUserIsRefused() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let theirs = base + "/theirs"
        #expect(mkdir(theirs, 0o755) == 0 && chown(theirs, otherUID, otherUID) == 0)
        #expect(mkdir(theirs + "/home", 0o700) == 0)

        let error = try #require(problem(theirs + "/home"))
        #expect(error.problem == .untrustedParent(uid: otherUID, mode: 0o755))
        #expect(entries(theirs + "/home").isEmpty)
    }

    @Test func symlinksAmongTheParentsAreFollowedOnlyWhenTrusted() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base + "/real", withIntermediateDirectories: false)
        // Root's own link (as /var/run -> /run): followed.
        #expect(symlink(base + "/real", base + "/link") == 0)
        #expect(try StateDirectory(path: base + "/link/home").directory("run") == base + "/link/home/run")
        #expect(FileManager.default.fileExists(atPath: base + "/real/home/run"))

        // Another user's link: refused, nothing made at its target.
        #expect(symlink(base + "/real", base + "/their-link") == 0)
        #expect(lchown(base + "/their-link", otherUID, otherUID) == 0)
        let error = try #require(problem(base + "/their-link/other"))
        #expect(error.problem == .untrustedSymlink(uid: otherUID))
        #expect(!FileManager.default.fileExists(atPath: base + "/real/other"))
    }

    @Test func aRelativeNameCannotClimbOut() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let error = try #require(problem(base + "/home", "cache/../../escape"))
        #expect(error.problem == .invalidName(".."))
        #expect(!FileManager.default.fileExists(atPath: base + "/escape"))
        #expect(!FileManager.default.fileExists(atPath: base + "/home"), "made directories before refusing")
    }

    /// Callers see the refusal too: the image store fails with it, and the
    /// seccomp filter is compiled without writing a cache there.
    @Test func callersReportTheRefusalAndWriteNothing() throws {
        let base = try scratch()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let target = base + "/elsewhere"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        #expect(symlink(target, base + "/home") == 0)
        let state = StateDirectory(path: base + "/home")

        #expect {
            _ = try ImageStore(state: state)
        } throws: { error in
            guard case ImageError.stateDirectory(let refused) = error else { return false }
            return refused.problem == .symbolicLink && "\(error)".contains(base + "/home")
        }
        let filter = try DefaultSeccomp.filter(state: state)
        #expect(!filter.instructions.isEmpty)
        #expect(entries(target).isEmpty)
    }
}
