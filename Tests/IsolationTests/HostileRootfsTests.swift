import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// The rootfs is attacker-controlled: symlinked mount points must never make
/// dgrid mount or write outside it (CVE-2019-19921, CVE-2023-27561).
@Suite(.system, .serialized) struct HostileRootfsTests {
    @Test(arguments: [("proc", "/"), ("dev", "/"), ("tmp", "DECOY"), ("sys", "/"), ("proc", "../../../../proc"), ("dev", "DECOY")])
    func symlinkedMountPointsAreRefused(entry: String, target: String) throws {
        let copy = try Fixture.rootfsCopy()
        let decoy = try TempDir.make(prefix: "dgrid-decoy").path
        try "untouched".write(toFile: decoy + "/canary", atomically: false, encoding: .utf8)
        let linkTarget = target == "DECOY" ? decoy : target
        try FileManager.default.removeItem(atPath: "\(copy)/\(entry)")
        try FileManager.default.createSymbolicLink(atPath: "\(copy)/\(entry)", withDestinationPath: linkTarget)
        let mountsBefore = try HostMounts.snapshot()

        var spec = try Fixture.shell("echo escaped")
        spec.root = .directory(copy)
        #expect {
            try Fixture.runner.run(spec)
        } throws: { error in
            guard case SandboxError.setup(_, let err) = error else { return false }
            return err == ENOTDIR && "\(error)".contains("/\(entry)")
        }
        #expect(try HostMounts.snapshot() == mountsBefore)
        #expect(try FileManager.default.contentsOfDirectory(atPath: decoy) == ["canary"])
        #expect(try String(contentsOfFile: decoy + "/canary", encoding: .utf8) == "untouched")
    }

    @Test func missingRootfsIsRefused() throws {
        var spec = try Fixture.shell("true")
        spec.root = .directory("/nonexistent/dgrid-rootfs")
        #expect(throws: SandboxError.rootfs(path: "/nonexistent/dgrid-rootfs", reason: "does not exist")) {
            try Fixture.runner.run(spec)
        }
    }

    @Test func hostRootIsNotARootfs() throws {
        var spec = try Fixture.shell("true")
        spec.root = .directory("/")
        #expect(throws: SandboxError.self) { try Fixture.runner.run(spec) }
    }

    @Test func commandMissingFromTheRootfsIsReported() throws {
        var spec = try Fixture.shell("true")
        spec.command = ["no-such-command"]
        #expect(throws: SandboxError.commandNotFound(command: "no-such-command", errno: ENOENT)) {
            try Fixture.runner.run(spec)
        }
    }

    @Test func workingDirectoryThatDoesNotExistIsReported() throws {
        var spec = try Fixture.shell("true")
        spec.workingDirectory = "/does/not/exist"
        #expect {
            try Fixture.runner.run(spec)
        } throws: { error in
            "\(error)".contains("chdir to working directory: No such file or directory")
        }
    }

    @Test func missingMountPointsAreCreatedInsideTheRootfsOnly() throws {
        let copy = try Fixture.rootfsCopy()
        for dir in ["proc", "dev", "sys", "tmp"] { try FileManager.default.removeItem(atPath: "\(copy)/\(dir)") }
        var spec = try Fixture.shell("ls -d /proc/1 /dev/null /tmp")
        spec.root = .directory(copy)
        let o = try Fixture.runner.run(spec)
        #expect(o.exitCode == 0)
        #expect(o.stdout.text == "/dev/null\n/proc/1\n/tmp\n")
    }
}
