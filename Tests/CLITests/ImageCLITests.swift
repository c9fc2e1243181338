import Foundation
import Synchronization
import Testing
import TestSupport

/// `dgrid image …` end to end through the built binary (docs/ARCHITECTURE.md §8): import,
/// allow / revoke / list / inspect, verify, gc. Each test has its own
/// DGRID_HOME, passed in the environment.
@Suite(.system) struct ImageCLITests {
    /// A fresh DGRID_HOME and a way to run dgrid in it.
    struct Home {
        let path: String

        /// `requireSignatures`: false (the default here) writes `trust/policy.toml`
        /// with `require_signatures = false`, so the suites about everything
        /// else run unsigned tasks; the signing suites pass true and get a host
        /// as a fresh install has it (docs/ARCHITECTURE.md §9).
        /// `parent`: where the home is made (a small tmpfs for the full-disk test); the system temp directory by default.
        init(requireSignatures: Bool = false, parent: String? = nil) throws {
            path = TestCleanup.removeAtExit((parent.map { $0 + "/" } ?? NSTemporaryDirectory()) + "dgrid-cli-home-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            if !requireSignatures {
                try FileManager.default.createDirectory(atPath: path + "/trust", withIntermediateDirectories: false,
                                                        attributes: [.posixPermissions: 0o700])
                FileManager.default.createFile(atPath: path + "/trust/policy.toml", contents: Data("require_signatures = false\n".utf8),
                                               attributes: [.posixPermissions: 0o600])
            }
        }

        /// `CLI.run` with DGRID_HOME set for this run only.
        func dgrid(_ args: String...) throws -> CLI.Result {
            try dgrid(args)
        }

        func dgrid(_ args: [String]) throws -> CLI.Result {
            try CLI.run(args, environment: ["DGRID_HOME": path])
        }

        func json(_ args: String...) throws -> [String: Any] {
            try json(args)
        }

        func json(_ args: [String]) throws -> [String: Any] {
            let r = try dgrid(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        }

        /// Imports the busybox image; returns its manifest digest.
        func importBusybox() throws -> String {
            let r = try dgrid("image", "import", try ImageCLITests.busyboxLayout())
            #expect(r.status == 0, "import: \(r.stderr)")
            let line = r.stdout.split(separator: "\n").first.map(String.init) ?? ""
            #expect(line.hasPrefix("dgrid/busybox:latest sha256:"))
            return String(line.split(separator: " ").last ?? "")
        }
    }

    private static let layout = Mutex<String?>(nil)

    static func busyboxLayout() throws -> String {
        try layout.withLock { cached in
            if let cached { return cached }
            let dir = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-cli-busybox-image-\(UUID().uuidString.prefix(8))")
            let build = Process()
            build.executableURL = CLI.packageRoot.appendingPathComponent("images/build-busybox-image.sh")
            build.arguments = [dir]
            build.standardOutput = FileHandle.nullDevice
            try build.run()
            build.waitUntilExit()
            guard build.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
            cached = dir
            return dir
        }
    }

    /// One line on stderr starting "dgrid: ", exit 1.
    private func expectOneLineError(_ r: CLI.Result, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("dgrid: "), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(text), "\(r.stderr) should contain \(text)", sourceLocation: sourceLocation)
    }

    private func images(_ home: Home) throws -> [[String: Any]] {
        try home.json("image", "list", "--json")["images"] as? [[String: Any]] ?? []
    }

    @Test func importAllowListInspectRevoke() throws {
        let home = try Home()
        let digest = try home.importBusybox()

        var rows = try images(home)
        #expect(rows.count == 1)
        #expect(rows.first?["name"] as? String == "dgrid/busybox:latest")
        #expect(rows.first?["allowlisted"] as? Bool == false)
        #expect(!FileManager.default.fileExists(atPath: home.path + "/images/allowlist.json"))

        let allow = try home.dgrid("image", "allow", "dgrid/busybox:latest", "--approved-by", "make-demo", "--note", "the demo image")
        #expect(allow.status == 0, "\(allow.stderr)")
        #expect(allow.stdout == "dgrid/busybox:latest \(digest)\n")

        // The host file now exists, in docs/ARCHITECTURE.md §5's format, every key present.
        let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: home.path + "/images/allowlist.json"))) as? [String: Any]
        let entry = try #require((file?["images"] as? [[String: Any]])?.first)
        #expect(Set(entry.keys) == ["name", "digest", "added_at", "approved_by", "note", "last_scanned", "vulnerabilities"])
        #expect(entry["digest"] as? String == digest)
        #expect(entry["approved_by"] as? String == "make-demo")
        #expect(entry["note"] as? String == "the demo image")
        #expect(entry["last_scanned"] is NSNull)
        let attributes = try FileManager.default.attributesOfItem(atPath: home.path + "/images/allowlist.json")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        rows = try images(home)
        #expect(rows.first?["allowlisted"] as? Bool == true)
        #expect(rows.first?["approved_by"] as? String == "make-demo")
        let table = try home.dgrid("image", "list")
        #expect(table.stdout.contains("NAME"))
        #expect(table.stdout.contains("dgrid/busybox:latest"))
        #expect(table.stdout.contains("make-demo"))

        let inspect = try home.json("image", "inspect", "dgrid/busybox", "--json")
        #expect(inspect["manifest_digest"] as? String == digest)
        #expect(inspect["cmd"] as? [String] == ["sh"])
        #expect(inspect["allowlisted_as"] as? [String] == ["dgrid/busybox:latest"])
        let layers = inspect["layers"] as? [[String: Any]] ?? []
        #expect(layers.count == 1)
        #expect(layers.first?["unpacked"] as? Bool == true)
        #expect((layers.first?["diff_id"] as? String)?.hasPrefix("sha256:") == true)
        let byDigest = try home.dgrid("image", "inspect", digest)
        #expect(byDigest.status == 0)
        #expect(byDigest.stdout.contains("Manifest:     \(digest)"))
        #expect(byDigest.stdout.contains("Cmd:          [\"sh\"]"))

        let revoke = try home.dgrid("image", "revoke", "dgrid/busybox:latest")
        #expect(revoke.status == 0, "\(revoke.stderr)")
        #expect(revoke.stdout == "revoked dgrid/busybox:latest \(digest)\n")
        #expect(try images(home).first?["allowlisted"] as? Bool == false)
        expectOneLineError(try home.dgrid("image", "revoke", "dgrid/busybox:latest"), containing: "not on the allowlist")
    }

    @Test func allowByDigestAndRevokeByDigest() throws {
        let home = try Home()
        let digest = try home.importBusybox()
        let allow = try home.dgrid("image", "allow", "team/busybox:pinned@\(digest)")
        #expect(allow.status == 0, "\(allow.stderr)")
        #expect(allow.stdout == "team/busybox:pinned \(digest)\n")
        let revoke = try home.dgrid("image", "revoke", digest)
        #expect(revoke.stdout == "revoked team/busybox:pinned \(digest)\n")
    }

    @Test(arguments: [
        (["image", "allow", "never/imported"], "no local image 'never/imported:latest'"),
        (["image", "allow", "Bad Name"], "invalid image reference"),
        (["image", "allow", "x@sha256:" + String(repeating: "0", count: 64)], "not in the local store"),
        (["image", "inspect", "nothing/here"], "no local image"),
        (["image", "inspect", "sha256:ABC"], "invalid digest"),
        (["image", "revoke", "nothing/here"], "not on the allowlist"),
        (["image", "import", "/nonexistent/image"], "No such file or directory"),
    ])
    func badRequestsGetOneLineAndExit1(args: [String], message: String) throws {
        let home = try Home()
        expectOneLineError(try home.dgrid(args), containing: message)
    }

    /// Separate dgrid processes updating the allowlist at once lose nothing (flock).
    @Test func concurrentAllowsFromManyProcessesAllLand() async throws {
        let home = try Home()
        let names = (0..<8).map { "team/app\($0):v1" }
        for name in names {
            let r = try home.dgrid("image", "import", try Self.busyboxLayout(), "--name", name)
            #expect(r.status == 0, "\(r.stderr)")
        }
        try await withThrowingTaskGroup(of: CLI.Result.self) { group in
            for name in names {
                group.addTask { try home.dgrid("image", "allow", name) }
            }
            for try await result in group {
                #expect(result.status == 0, "\(result.stderr)")
            }
        }
        let allowed = try images(home).filter { $0["allowlisted"] as? Bool == true }.compactMap { $0["name"] as? String }
        #expect(Set(allowed) == Set(names))
    }

    @Test func aScanCommandIsRunAndRecorded() throws {
        let home = try Home()
        _ = try home.importBusybox()
        let r = try home.dgrid("image", "allow", "dgrid/busybox:latest", "--approved-by", "ci",
                               "--scan-command", #"/bin/sh -c 'test -f "$0/index.json" && echo "2 HIGH, 0 CRITICAL"; exit 1' {layout}"#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("scan exited 1: 2 HIGH, 0 CRITICAL"))
        let row = try #require(try images(home).first)
        let scan = row["vulnerabilities"] as? [String: Any]
        #expect(scan?["exit_status"] as? Int == 1)
        #expect(scan?["summary"] as? String == "2 HIGH, 0 CRITICAL")
        #expect(row["last_scanned"] is String)
    }

    @Test func aTamperedImageIsRefusedAndNothingIsListed() throws {
        let home = try Home()
        let copy = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-cli-tampered-\(UUID().uuidString.prefix(8))")
        try FileManager.default.copyItem(atPath: try Self.busyboxLayout(), toPath: copy)
        let blobs = copy + "/blobs/sha256"
        // The layer is the largest blob.
        let sizes = try FileManager.default.contentsOfDirectory(atPath: blobs).map { name in
            (name, try FileManager.default.attributesOfItem(atPath: "\(blobs)/\(name)")[.size] as? Int ?? 0)
        }
        let largest = try #require(sizes.max { $0.1 < $1.1 }?.0)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: "\(blobs)/\(largest)"))
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: Data([0xff]))
        try handle.close()
        expectOneLineError(try home.dgrid("image", "import", copy), containing: "blob sha256:\(largest): content hashes to")
        #expect(try images(home).isEmpty)
    }

    @Test func verifyQuarantinesACorruptBlobAndExitsNonZero() throws {
        let home = try Home()
        let digest = try home.importBusybox()
        let clean = try home.dgrid("image", "verify")
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.stdout.contains("verified 3 blobs"))

        let hex = String(digest.dropFirst("sha256:".count))
        let blob = home.path + "/images/blobs/sha256/\(hex)"
        try Data("{}".utf8).write(to: URL(fileURLWithPath: blob))
        let r = try home.dgrid("image", "verify")
        #expect(r.status == 1)
        #expect(r.stdout.contains("corrupt \(hex)"))
        #expect(!FileManager.default.fileExists(atPath: blob))
        #expect(FileManager.default.fileExists(atPath: home.path + "/images/quarantine/\(hex)"))
        #expect(try home.dgrid("image", "verify").status == 0)
    }

    @Test func gcRemovesAStrayLayerAndBlobAndKeepsTheImage() throws {
        let home = try Home()
        _ = try home.importBusybox()
        let strayLayer = home.path + "/layers/" + String(repeating: "ab", count: 32)
        try FileManager.default.createDirectory(atPath: strayLayer + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: strayLayer + "/bin/escape", withDestinationPath: "/etc")
        let strayBytes = Data("stray".utf8)
        let hash = try CLI.sha256(strayBytes)
        try strayBytes.write(to: URL(fileURLWithPath: home.path + "/images/blobs/sha256/\(hash)"))

        let r = try home.dgrid("image", "gc")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("removed layer sha256:\(String(repeating: "ab", count: 32))"))
        #expect(r.stdout.contains("removed blob sha256:\(hash)"))
        #expect(!FileManager.default.fileExists(atPath: strayLayer))
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"))
        let inspect = try home.json("image", "inspect", "dgrid/busybox:latest", "--json")
        #expect((inspect["layers"] as? [[String: Any]])?.first?["unpacked"] as? Bool == true)
        #expect(try home.dgrid("image", "verify").status == 0)
    }
}

extension CLI {
    /// sha256 hex of `data`, with the system's sha256sum (CLITests link nothing of dgrid's).
    static func sha256(_ data: Data) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(data)
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: out, as: UTF8.self).prefix(64))
    }
}
