import Foundation
import Testing
import TestSupport

/// `make install` / `make uninstall` and the unit they install
/// (docs/ARCHITECTURE.md §12, "Install and run as a service"), from the debug
/// build: the layout, `dgrid` finding its siblings through the PATH symlink,
/// man pages from the help text, and `systemd-analyze verify`. The release
/// build in a Debian package, booted under systemd, is DebPackageCLITests.
@Suite(.system, .serialized) struct InstallCLITests {
    static let debugBin = CLI.packageRoot.appendingPathComponent(".build/debug").path

    /// swift-argument-parser's generate-manual tool, which `make test` builds
    /// (`swift package generate-manual --help`); tests must not run SwiftPM
    /// themselves while `swift test` holds the build directory.
    static func manualTool() throws -> String {
        let tool = ProcessInfo.processInfo.environment["MANUAL_TOOL"] ?? debugBin + "/generate-manual-tool"
        try #require(FileManager.default.isExecutableFile(atPath: tool),
                     "\(tool) missing: run `swift package generate-manual --help` once (make test does)")
        return tool
    }

    static func make(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run("/usr/bin/make", ["-s", "-C", CLI.packageRoot.path] + arguments,
                              environment: ["MANUAL_TOOL": try manualTool()].merging(environment) { $1 })
    }

    /// Every file and symlink under `root`, relative to it.
    static func files(under root: String) -> [String] {
        let found = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
        return found.filter { path in
            var status = stat()
            return lstat(root + "/" + path, &status) == 0 && (status.st_mode & S_IFMT) != S_IFDIR
        }.sorted()
    }

    @Test func installLaysOutATreeWhoseDgridFindsItsSiblingsAndUninstallEmptiesIt() throws {
        let dest = try TempDir.make(prefix: "dgrid-destdir").path
        let man = try TempDir.make(prefix: "dgrid-man").path
        let installed = try Self.make(["install", "DESTDIR=\(dest)", "PREFIX=/usr/local", "BIN_DIR=\(Self.debugBin)", "MAN_DIR=\(man)"])
        try #require(installed.status == 0, "\(installed.stdout)\(installed.stderr)")
        let prefix = dest + "/usr/local"
        let all = Self.files(under: prefix)
        for expected in ["bin/dgrid", "libexec/dgrid/dgrid", "libexec/dgrid/dgrid-grid", "libexec/dgrid/dgrid-registry",
                         "libexec/dgrid/dgrid-init", "share/dgrid/profiles/default.json", "share/dgrid/images/build-busybox-image.sh",
                         "share/dgrid/images/allowlist.json", "share/doc/dgrid/worker.toml.example",
                         "share/doc/dgrid/dgrid-worker.env.example", "lib/systemd/system/dgrid-worker@.service",
                         "share/man/man1/dgrid.1", "share/man/man1/dgrid.worker.1", "share/man/man1/dgrid.sandbox.run.1",
                         "share/man/man1/dgrid.image.pull.1"] {
            #expect(all.contains(expected), "\(expected) not installed; installed: \(all)")
        }
        // Only `dgrid` on PATH, a relative link, so the tree can move (a package root, a DESTDIR).
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: prefix + "/bin/dgrid") == "../libexec/dgrid/dgrid")
        #expect(all.filter { $0.hasPrefix("bin/") } == ["bin/dgrid"])
        let unit = try String(contentsOfFile: prefix + "/lib/systemd/system/dgrid-worker@.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/local/bin/dgrid worker $DGRID_WORKER_ARGS"), "\(unit)")
        #expect(!unit.contains("@"  + "BINDIR@"))

        // Through the symlink: `dgrid` execs dgrid-grid and loads dgrid-init from libexec.
        let dgrid = prefix + "/bin/dgrid"
        let help = try ProcessRunner.run(dgrid, ["worker", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--repo"), "\(help.stderr)")
        let sandbox = try ProcessRunner.run(dgrid, ["sandbox", "run", "--rootfs", try CLI.rootfs(), "--", "sh", "-c", "echo inside"],
                                            environment: ["DGRID_HOME": try TempDir.make(prefix: "dgrid-installed-home").path])
        #expect(sandbox.status == 0 && sandbox.stdout == "inside\n", "\(sandbox.stderr)")

        // The pages hold each verb's options, from the binary that runs the verb.
        func page(_ name: String) throws -> String {
            try ProcessRunner.run("/usr/bin/man", ["-l", "-P", "cat", prefix + "/share/man/man1/\(name).1"],
                                  environment: ["MANWIDTH": "200"]).stdout
        }
        #expect(try page("dgrid.worker").contains("--allow-unsigned"))
        #expect(try page("dgrid.image.pull").contains("--registry-config"))
        #expect(try page("dgrid.sandbox.run").contains("--memory"))
        #expect(try page("dgrid").contains("dgrid.worker(1)"))

        let removed = try Self.make(["uninstall", "DESTDIR=\(dest)", "PREFIX=/usr/local"])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(Self.files(under: prefix).isEmpty, "left behind: \(Self.files(under: prefix))")
    }

    /// The installed unit as systemd reads it: `systemd-analyze verify` checks
    /// every directive, that ExecStart exists and that the man page named in
    /// Documentation= is found. What cannot run here — systemd as pid 1
    /// starting the unit — DebPackageCLITests does in a booted root.
    @Test func theInstalledUnitPassesSystemdAnalyzeVerify() throws {
        let prefix = try TempDir.make(prefix: "dgrid-prefix").path
        let man = try TempDir.make(prefix: "dgrid-man").path
        let installed = try Self.make(["install", "PREFIX=\(prefix)", "BIN_DIR=\(Self.debugBin)", "MAN_DIR=\(man)"])
        try #require(installed.status == 0, "\(installed.stderr)")
        let unit = prefix + "/lib/systemd/system/dgrid-worker@.service"
        let verified = try ProcessRunner.run("/usr/bin/systemd-analyze", ["verify", unit], environment: ["MANPATH": prefix + "/share/man"])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect((verified.stdout + verified.stderr).isEmpty, "\(verified.stdout)\(verified.stderr)")

        // A unit that is not clean fails it: the check can fail.
        let broken = prefix + "/lib/systemd/system/dgrid-broken@.service"
        try unit.contents().replacing("Type=notify", with: "Type=notiffy").write(toFile: broken, atomically: true, encoding: .utf8)
        let refused = try ProcessRunner.run("/usr/bin/systemd-analyze", ["verify", broken], environment: ["MANPATH": prefix + "/share/man"])
        #expect((refused.stdout + refused.stderr).contains("Failed to parse service type"), "\(refused.stdout)\(refused.stderr)")
    }

    /// Nothing half-installed: a build directory without the binaries stops
    /// the install with what to do, before anything is written.
    @Test func installFromAnIncompleteBuildWritesNothing() throws {
        let dest = try TempDir.make(prefix: "dgrid-destdir").path
        let empty = try TempDir.make(prefix: "dgrid-empty-bin").path
        let installed = try Self.make(["install", "DESTDIR=\(dest)", "BIN_DIR=\(empty)", "MAN_DIR=\(empty)/man"])
        #expect(installed.status != 0)
        #expect(installed.stderr.contains("\(empty)/dgrid missing: build first (make release)"), "\(installed.stderr)")
        #expect(Self.files(under: dest).isEmpty)
    }

    /// A debug build links the Swift runtime from the toolchain, which no
    /// Debian host has: `make deb` refuses it rather than ship a package that
    /// cannot start.
    @Test func aDebugBuildIsNotPackaged() throws {
        let out = try TempDir.make(prefix: "dgrid-dist").path
        let packaged = try ProcessRunner.run(CLI.packageRoot.appendingPathComponent("scripts/package-deb.sh").path, [out],
                                             environment: ["BIN_DIR": Self.debugBin, "MAN_DIR": out])
        #expect(packaged.status != 0)
        #expect(packaged.stderr.contains("links the Swift runtime dynamically: package a release build (make release)"), "\(packaged.stderr)")
        #expect(Self.files(under: out).isEmpty)
    }
}

private extension String {
    func contents() throws -> String { try String(contentsOfFile: self, encoding: .utf8) }
}
