import Foundation
import Testing
import TestSupport

/// Untrusted text reaches the terminal inert (docs/THREATS.md, T13): an image
/// config's values in `image inspect`, and a node record a repository writer
/// pushed in `status`. Before one helper guarded every printing site, these
/// went out raw: C1 CSI, bidi overrides and zero-width characters included.
@Suite(.system, .serialized) struct UntrustedTextCLITests {
    static let hostile = "\u{9b}2J\u{1b}]8;;https://evil.example\u{1b}\\x\u{202e}gnp.exe\u{200b}\u{2066}"

    static func expectInert(_ text: String, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let raw = text.unicodeScalars.filter { scalar in
            (scalar.value < 0x20 && scalar != "\n") || (0x7f...0x9f).contains(scalar.value)
                || [0x200b, 0x202e, 0x2066, 0xfeff].contains(scalar.value)
        }
        #expect(raw.isEmpty, "\(context) printed raw \(raw.map { String($0.value, radix: 16) })", sourceLocation: sourceLocation)
    }

    @Test func imageInspectShowsHostileConfigValuesEscaped() throws {
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        let layout = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-hostile-config-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: layout) }
        #expect(try ProcessRunner.run("/bin/cp", ["-a", try ImageCLITests.busyboxLayout(), layout]).status == 0)
        // Rewrite the config (and the manifest and index that pin it) with hostile values.
        let script = #"""
        import hashlib, json, os, sys
        layout, hostile = sys.argv[1], sys.argv[2]
        def path(d): return os.path.join(layout, "blobs", "sha256", d.split(":")[1])
        def put(data):
            d = "sha256:" + hashlib.sha256(data).hexdigest()
            open(path(d), "wb").write(data)
            return d, len(data)
        index = json.load(open(os.path.join(layout, "index.json")))
        manifest = json.load(open(path(index["manifests"][0]["digest"])))
        config = json.load(open(path(manifest["config"]["digest"])))
        config["config"]["Env"] = ["PATH=/bin", "GREETING=" + hostile]
        config["config"]["WorkingDir"] = "/w" + hostile
        manifest["config"]["digest"], manifest["config"]["size"] = put(json.dumps(config).encode())
        index["manifests"][0]["digest"], index["manifests"][0]["size"] = put(json.dumps(manifest).encode())
        json.dump(index, open(os.path.join(layout, "index.json"), "w"))
        """#
        let edited = try ProcessRunner.run("/usr/bin/python3", ["-c", script, layout, Self.hostile])
        try #require(edited.status == 0, "\(edited.stderr)")
        let imported = try home.dgrid("image", "import", layout)
        try #require(imported.status == 0, "\(imported.stderr)")
        let inspected = try home.dgrid("image", "inspect", "dgrid/busybox:latest")
        #expect(inspected.status == 0, "\(inspected.stderr)")
        #expect(inspected.stdout.contains("GREETING=\\u{9b}2J\\u{1b}]8;;"), "\(inspected.stdout)")
        #expect(inspected.stdout.contains("\\u{202e}"), "\(inspected.stdout)")
        Self.expectInert(inspected.stdout + inspected.stderr, "image inspect")
        let json = try home.dgrid("image", "inspect", "--json", "dgrid/busybox:latest")
        #expect(json.status == 0)
        Self.expectInert(json.stdout, "image inspect --json")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((object?["env"] as? [String])?.contains("GREETING=" + Self.hostile) == true, "the JSON value is unchanged")
    }

    @Test func statusShowsAHostileNodeRecordEscaped() throws {
        let repo = try GridFixture.bareRepository()
        defer { try? FileManager.default.removeItem(atPath: repo) }
        let home = try ImageCLITests.Home()
        defer { try? FileManager.default.removeItem(atPath: home.path) }
        #expect(try home.dgrid("init", "--repo", repo).status == 0)
        // A repository writer pushes a node record whose status and heartbeat are terminal escapes.
        let work = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-hostile-node-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(atPath: work) }
        #expect(try GridFixture.git(["clone", "-q", "--branch", "main", repo, work]).status == 0)
        let record: [String: Any] = ["node_id": "evil", "status": Self.hostile, "last_heartbeat": "\u{1b}[2K" + Self.hostile,
                                     "slots": 1]
        try FileManager.default.createDirectory(atPath: work + "/nodes", withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: work + "/nodes/evil.json"))
        let identity = ["-c", "user.name=w", "-c", "user.email=w@localhost", "-C", work]
        #expect(try GridFixture.git(identity + ["add", "nodes/evil.json"]).status == 0)
        #expect(try GridFixture.git(identity + ["commit", "-qm", "node"]).status == 0)
        #expect(try GridFixture.git(identity + ["push", "-q", "origin", "main"]).status == 0)

        let status = try home.dgrid("status", "--repo", repo)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("node evil \\u{9b}2J"), "\(status.stdout)")
        Self.expectInert(status.stdout + status.stderr, "status")
        let json = try home.dgrid("status", "--repo", repo, "--json")
        Self.expectInert(json.stdout, "status --json")
    }
}
