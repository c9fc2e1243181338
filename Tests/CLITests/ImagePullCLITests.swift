import Foundation
import Testing
import TestSupport

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let suitePorts = FreePort.loopbackPorts(2)

/// `dgrid image pull` and registry-resolved `allow` against real registries
/// on loopback (Debian's docker-registry through scripts/registry.sh) and a
/// lying one (docs/THREATS.md, attacker 4: a network peer). Each suite has its own port.
enum PullFixture {
    static let script = CLI.packageRoot.appendingPathComponent("scripts/registry.sh").path

    static func tempDir(_ prefix: String) throws -> String {
        try TempDir.make(prefix: prefix).path
    }

    static func sh(_ argv: [String], stdin: String? = nil) throws -> ProcessResult {
        if let stdin {
            return try ProcessRunner.run("/bin/sh", ["-c", "printf '%s' \"$DGRID_STDIN\" | \"$@\"", "sh"] + argv,
                                         environment: ["DGRID_STDIN": stdin])
        }
        return try ProcessRunner.run(argv[0], Array(argv.dropFirst()))
    }

    /// A registry on 127.0.0.1:port; stop it with `stop(dir)`.
    static func startRegistry(port: Int, htpasswd: String? = nil) throws -> String {
        let dir = try tempDir("dgrid-registry")
        _ = try sh([script, "stop", dir])
        let r = try sh([script, "start", dir, "\(port)"] + (htpasswd.map { [$0] } ?? []))
        #expect(r.status == 0, "registry start: \(r.stderr)")
        return dir
    }

    static func stop(_ dir: String) {
        _ = try? sh([script, "stop", dir])
    }

    /// Pushes the busybox layout as `127.0.0.1:port/dgrid/busybox:tag`.
    static func push(port: Int, tag: String, format: String? = nil, creds: String? = nil) throws {
        var argv = ["/usr/bin/skopeo", "copy", "-q", "--dest-tls-verify=false"]
        if let format { argv += ["--format", format] }
        if let creds { argv += ["--dest-creds", creds] }
        argv += ["oci:" + (try ImageCLITests.busyboxLayout()), "docker://127.0.0.1:\(port)/dgrid/busybox:\(tag)"]
        let r = try sh(argv)
        #expect(r.status == 0, "skopeo: \(r.stderr)")
    }

    static func expectOneLineError(_ r: CLI.Result, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("dgrid: "), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(text), "\(r.stderr) should contain \(text)", sourceLocation: sourceLocation)
    }

    /// `allow` prints "NAME DIGEST"; returns the digest.
    static func allow(_ home: ImageCLITests.Home, _ args: String...) throws -> String {
        let r = try home.dgrid(["image", "allow"] + args)
        #expect(r.status == 0, "allow: \(r.stderr)")
        let digest = String(r.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(digest.hasPrefix("sha256:"), "\(r.stdout)")
        return digest
    }

    /// Names in the local index.
    static func localNames(_ home: ImageCLITests.Home) throws -> [String] {
        let path = home.path + "/images/index.json"
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let index = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return (index["manifests"] as? [[String: Any]] ?? []).compactMap {
            ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"]
        }
    }

    /// Every entry below `dir`: relative path → kind, mode, size, content hash or link target.
    static func tree(_ dir: String) throws -> [String: String] {
        var result: [String: String] = [:]
        let fm = FileManager.default
        for case let relative as String in fm.enumerator(atPath: dir)?.allObjects ?? [] {
            let path = dir + "/" + relative
            let attrs = try fm.attributesOfItem(atPath: path)
            let type = attrs[.type] as? FileAttributeType
            let mode = (attrs[.posixPermissions] as? Int).map { String($0, radix: 8) } ?? "?"
            var detail = ""
            if type == .typeSymbolicLink {
                detail = try fm.destinationOfSymbolicLink(atPath: path)
            } else if type == .typeRegular {
                detail = "\(attrs[.size] ?? 0)"
            }
            result[relative] = "\(type?.rawValue ?? "?") \(mode) \(detail)"
        }
        return result
    }
}

@Suite(.system, .serialized) struct ImagePullCLITests {
    static let port = suitePorts[0]

    @Test func allowResolvesTagThenPullByDigestMatchesImport() throws {
        let registry = try PullFixture.startRegistry(port: Self.port)
        defer { PullFixture.stop(registry) }
        try PullFixture.push(port: Self.port, tag: "1")
        try PullFixture.push(port: Self.port, tag: "v2s2", format: "v2s2")
        let host = "127.0.0.1:\(Self.port)"

        let home = try ImageCLITests.Home()
        let digest = try PullFixture.allow(home, "\(host)/dgrid/busybox:1", "--insecure")
        // allow pulls nothing.
        #expect(try PullFixture.localNames(home).isEmpty)

        let pulled = try home.dgrid("image", "pull", "\(host)/dgrid/busybox@\(digest)", "--insecure")
        #expect(pulled.status == 0, "pull: \(pulled.stderr)")
        #expect(pulled.stdout == "\(host)/dgrid/busybox:1 \(digest)\n")
        #expect(try PullFixture.localNames(home) == ["\(host)/dgrid/busybox:1"])

        // The same layout imported elsewhere: same manifest, same diff_id, same tree.
        let other = try ImageCLITests.Home()
        let imported = try other.importBusybox()
        #expect(imported == digest)
        let inspect = try home.json("image", "inspect", digest, "--json")
        let layers = inspect["layers"] as? [[String: Any]] ?? []
        #expect(layers.count == 1)
        let diffID = (layers.first?["diff_id"] as? String) ?? ""
        #expect(diffID.hasPrefix("sha256:"), "\(inspect)")
        let hex = String(diffID.dropFirst(7))
        let pulledTree = try PullFixture.tree(home.path + "/layers/" + hex)
        let importedTree = try PullFixture.tree(other.path + "/layers/" + hex)
        #expect(!pulledTree.isEmpty)
        #expect(pulledTree == importedTree)

        // Pulling again is a no-op on the network side and keeps the name.
        let again = try home.dgrid("image", "pull", "\(host)/dgrid/busybox@\(digest)", "--insecure")
        #expect(again.status == 0, "\(again.stderr)")

        // Docker v2 schema 2 media types: another manifest, the same layer.
        let v2 = try PullFixture.allow(home, "\(host)/dgrid/busybox:v2s2", "--insecure")
        #expect(v2 != digest)
        let pulledV2 = try home.dgrid("image", "pull", "\(host)/dgrid/busybox@\(v2)", "--insecure")
        #expect(pulledV2.status == 0, "\(pulledV2.stderr)")
        #expect(pulledV2.stderr.contains("0 unpacked now"), "\(pulledV2.stderr)")

        // https to a plain-HTTP registry: a clear error suggesting --insecure.
        let fresh = try ImageCLITests.Home()
        _ = try PullFixture.allow(fresh, "\(host)/dgrid/busybox:1", "--insecure")
        let tls = try fresh.dgrid("image", "pull", "\(host)/dgrid/busybox@\(digest)")
        PullFixture.expectOneLineError(tls, containing: "--insecure")
        let tlsAllow = try fresh.dgrid("image", "allow", "\(host)/dgrid/busybox:v2s2")
        PullFixture.expectOneLineError(tlsAllow, containing: "--insecure")

        // An unknown tag: the registry's 404, one line.
        let missing = try fresh.dgrid("image", "allow", "\(host)/dgrid/busybox:nope", "--insecure")
        PullFixture.expectOneLineError(missing, containing: "404")
    }

    @Test func tagIsRefused() throws {
        let home = try ImageCLITests.Home()
        let r = try home.dgrid("image", "pull", "127.0.0.1:1/dgrid/busybox:1", "--insecure")
        PullFixture.expectOneLineError(r, containing: "tasks run images by digest only; pin a tag with `dgrid image allow NAME:TAG`")
    }

    @Test func notAllowlistedIsRefusedBeforeAnyConnection() throws {
        let home = try ImageCLITests.Home()
        // Nothing listens on port 1: a connection attempt would say so.
        let digest = "sha256:" + String(repeating: "c", count: 64)
        let r = try home.dgrid("image", "pull", "127.0.0.1:1/dgrid/busybox@\(digest)", "--insecure")
        PullFixture.expectOneLineError(r, containing: "is not on the allowlist")
        #expect(!r.stderr.contains("onnect"))
    }

    @Test func unknownLocalNameWithoutRegistryKeepsLocalError() throws {
        let home = try ImageCLITests.Home()
        let r = try home.dgrid("image", "allow", "nothing:1")
        PullFixture.expectOneLineError(r, containing: "no local image 'nothing:1'")
    }
}

@Suite(.system, .serialized) struct ImagePullAuthCLITests {
    static let port = suitePorts[1]
    static let password = "pw-\(UUID().uuidString.prefix(12))"

    @Test func basicAuthFromConfigFile() throws {
        let work = try PullFixture.tempDir("dgrid-registry-auth")
        let htpasswd = work + "/htpasswd"
        let made = try PullFixture.sh([PullFixture.script, "htpasswd", htpasswd, "alice"], stdin: Self.password)
        #expect(made.status == 0, "\(made.stderr)")
        let registry = try PullFixture.startRegistry(port: Self.port, htpasswd: htpasswd)
        defer { PullFixture.stop(registry) }
        try PullFixture.push(port: Self.port, tag: "1", creds: "alice:\(Self.password)")
        let host = "127.0.0.1:\(Self.port)"

        func config(_ name: String, password: String) throws -> String {
            let auth = Data("alice:\(password)".utf8).base64EncodedString()
            let path = work + "/" + name
            try Data(#"{"auths":{"\#(host)":{"auth":"\#(auth)"}}}"#.utf8).write(to: URL(fileURLWithPath: path))
            #expect(chmod(path, 0o600) == 0)
            return path
        }
        let good = try config("config.json", password: Self.password)
        let bad = try config("bad.json", password: "wrong-\(Self.password)")

        let home = try ImageCLITests.Home()
        // No credentials: a clean 401.
        let anonymous = try home.dgrid("image", "allow", "\(host)/dgrid/busybox:1", "--insecure")
        PullFixture.expectOneLineError(anonymous, containing: "401")

        // A wrong password: a clean one-line 401 that does not echo it.
        let wrong = try home.dgrid("image", "allow", "\(host)/dgrid/busybox:1", "--insecure", "--registry-config", bad)
        PullFixture.expectOneLineError(wrong, containing: "401")
        #expect(!wrong.stderr.contains("wrong-"))

        let allowed = try home.dgrid("image", "allow", "\(host)/dgrid/busybox:1", "--insecure", "--registry-config", good)
        #expect(allowed.status == 0, "\(allowed.stderr)")
        let digest = String(allowed.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)

        // The environment variable names the file too.
        let pulled = try CLI.run(["image", "pull", "\(host)/dgrid/busybox@\(digest)", "--insecure"],
                                 environment: ["DGRID_HOME": home.path, "DGRID_REGISTRY_CONFIG": good])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(try PullFixture.localNames(home) == ["\(host)/dgrid/busybox:1"])

        let base64 = Data("alice:\(Self.password)".utf8).base64EncodedString()
        for output in [anonymous, wrong, allowed, pulled].flatMap({ [$0.stdout, $0.stderr] }) {
            #expect(!output.contains(Self.password))
            #expect(!output.contains(base64))
        }
    }
}

/// A registry that lies (docs/THREATS.md, attacker 4), in Python: each tag's manifest names a
/// layer the server then serves wrongly.
@Suite(.system, .serialized) struct ImagePullLyingRegistryCLITests {
    static let server = #"""
    import http.server, json, os, signal, sys, time
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    root = sys.argv[1]
    modes = json.load(open(os.path.join(root, "modes.json")))
    # With a "bearer" file: the distribution token flow (401 + WWW-Authenticate,
    # anonymous token from /token) and blobs redirected to another origin
    # (localhost rather than 127.0.0.1) under /_blobstore/, which
    # refuses any Authorization header, as object stores do.
    bearer = os.path.exists(os.path.join(root, "bearer"))
    token = "tok-" + os.urandom(12).hex()
    failures = {}
    open(os.path.join(root, "token.txt"), "w").write(token)
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"
        def log_message(self, *a):
            with open(os.path.join(root, "access.log"), "a") as f: f.write(self.path + "\n")
        def plain(self, code, body=b"", headers={}):
            self.send_response(code)
            for k, v in headers.items(): self.send_header(k, v)
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        def do_GET(self):
            p = self.path.split("/")
            port = self.server.server_address[1]
            if self.path.startswith("/token?"):
                with open(os.path.join(root, "token.log"), "a") as f: f.write(self.path + " auth=" + str(self.headers.get("Authorization")) + "\n")
                return self.plain(200, json.dumps({"token": token}).encode(), {"Content-Type": "application/json"})
            if self.path.startswith("/_blobstore/"):
                if self.headers.get("Authorization"): return self.plain(400, b"credentials sent to the blob store")
                # "flaky": the first two fetches of each blob fail with 503.
                if os.path.exists(os.path.join(root, "flaky")):
                    failures[p[-1]] = failures.get(p[-1], 0) + 1
                    if failures[p[-1]] <= 2: return self.plain(503, b"try again")
                return self.plain(200, open(os.path.join(root, "blobs", p[-1]), "rb").read())
            if bearer and self.headers.get("Authorization") != "Bearer " + token:
                challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="lie-registry",scope="repository:lie/image:pull"' % port
                return self.plain(401, b"{}", {"WWW-Authenticate": challenge})
            if bearer and len(p) >= 5 and p[-2] == "blobs":
                return self.plain(307, b"", {"Location": "http://localhost:%d/_blobstore/%s" % (port, p[-1].split(":")[-1])})
            if self.path == "/v2/":
                self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers(); return
            if len(p) >= 5 and p[-2] == "manifests":
                f = os.path.join(root, "manifests", p[-1].replace(":", "_"))
                if not os.path.exists(f):
                    self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
                body = open(f, "rb").read()
                self.send_response(200)
                kind = "index" if b'"manifests"' in body else "manifest"
                self.send_header("Content-Type", "application/vnd.oci.image.%s.v1+json" % kind)
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body); return
            if len(p) >= 5 and p[-2] == "blobs":
                hexd = p[-1].split(":")[-1]
                body = open(os.path.join(root, "blobs", hexd), "rb").read()
                mode = modes.get(hexd, "ok")
                self.send_response(200)
                if mode == "flip":
                    body = bytes([body[0] ^ 1]) + body[1:]
                    self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
                elif mode == "long":
                    self.end_headers(); self.wfile.write(body + b"x" * 4096)   # no length: until close
                elif mode == "short":
                    half = body[: len(body) // 2]
                    self.send_header("Content-Length", str(len(half))); self.end_headers(); self.wfile.write(half)
                elif mode == "drip":
                    self.send_header("Content-Length", str(len(body))); self.end_headers()
                    for i in range(0, len(body), 16):
                        self.wfile.write(body[i:i+16]); self.wfile.flush(); time.sleep(0.25)
                else:
                    self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
                return
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    s.daemon_threads = True
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """#

    static func sha256(_ data: Data) throws -> String {
        let path = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-sha-\(UUID().uuidString.prefix(8))")
        try data.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try ProcessRunner.run("/usr/bin/sha256sum", [path])
        return String(r.stdout.prefix(64))
    }

    @Test func lyingBlobsAreRefusedNamingTheDigest() throws {
        let root = try PullFixture.tempDir("dgrid-lying-registry")
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/manifests", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/blobs", withIntermediateDirectories: true)
        // The real busybox config (one diff_id), so only the layer lies.
        let layout = try ImageCLITests.busyboxLayout()
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
        let top = ((index?["manifests"] as? [[String: Any]])?.first?["digest"] as? String) ?? ""
        let manifest = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + top.dropFirst(7)))) as? [String: Any] ?? [:]
        let config = manifest["config"] as? [String: Any] ?? [:]
        let configHex = String((config["digest"] as? String ?? "").dropFirst(7))
        try fm.copyItem(atPath: layout + "/blobs/sha256/" + configHex, toPath: root + "/blobs/" + configHex)

        var modes: [String: String] = [:]
        var layerDigests: [String: String] = [:]
        for mode in ["flip", "long", "short", "drip"] {
            var bytes = Data(count: 4096)
            for i in 0..<bytes.count { bytes[i] = UInt8.random(in: 0...255) }
            let hex = try Self.sha256(bytes)
            try bytes.write(to: URL(fileURLWithPath: root + "/blobs/" + hex))
            modes[hex] = mode
            layerDigests[mode] = "sha256:" + hex
            let doc: [String: Any] = [
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config,
                "layers": [["mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + hex, "size": 4096]],
            ]
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])
            try data.write(to: URL(fileURLWithPath: root + "/manifests/" + mode))
            try data.write(to: URL(fileURLWithPath: root + "/manifests/sha256_" + (try Self.sha256(data))))
        }
        try JSONSerialization.data(withJSONObject: modes).write(to: URL(fileURLWithPath: root + "/modes.json"))
        let (process, port) = try Self.startServer(root: root)
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        #expect(port > 0)
        let host = "127.0.0.1:\(port)"

        let expected = ["flip": "content hashes to", "long": "more than the declared 4096 bytes",
                        "short": "truncated", "drip": "did not arrive within"]
        for mode in ["flip", "long", "short", "drip"] {
            let home = try ImageCLITests.Home()
            let digest = try PullFixture.allow(home, "\(host)/lie/image:\(mode)", "--insecure")
            let started = Date()
            let r = try CLI.run(["image", "pull", "\(host)/lie/image@\(digest)", "--insecure"],
                                environment: ["DGRID_HOME": home.path, "DGRID_REGISTRY_TIMEOUT": "2"])
            PullFixture.expectOneLineError(r, containing: layerDigests[mode] ?? "?")
            #expect(r.stderr.contains(expected[mode] ?? "?"), "\(mode): \(r.stderr)")
            if mode == "drip" { #expect(Date().timeIntervalSince(started) < 20) }
            // Nothing named, the lying blob not stored.
            #expect(try PullFixture.localNames(home).isEmpty, "\(mode)")
            let hex = String((layerDigests[mode] ?? "").dropFirst(7))
            #expect(!fm.fileExists(atPath: home.path + "/images/blobs/sha256/" + hex), "\(mode)")
        }
    }

    /// Starts the server on a free port of 127.0.0.1; returns it and the port.
    static func startServer(root: String) throws -> (Process, Int) {
        try Data(Self.server.utf8).write(to: URL(fileURLWithPath: root + "/server.py"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [root + "/server.py", root]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        return (process, port)
    }

    /// The anonymous bearer-token flow, a blob redirect to a store that refuses
    /// credentials and fails twice with 503, and a tag that names an index:
    /// the pull asks for the pull scope, never sends the token to the redirect
    /// target, retries, picks linux/amd64, and prints no token.
    @Test func bearerTokenRedirectRetriesAndPlatformIndex() throws {
        let root = try PullFixture.tempDir("dgrid-bearer-registry")
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/manifests", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/blobs", withIntermediateDirectories: true)
        let layout = try ImageCLITests.busyboxLayout()
        for name in try fm.contentsOfDirectory(atPath: layout + "/blobs/sha256") {
            try fm.copyItem(atPath: layout + "/blobs/sha256/" + name, toPath: root + "/blobs/" + name)
        }
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
        let top = ((index?["manifests"] as? [[String: Any]])?.first?["digest"] as? String) ?? ""
        let manifest = try Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + top.dropFirst(7)))
        try manifest.write(to: URL(fileURLWithPath: root + "/manifests/sha256_" + top.dropFirst(7)))
        // Tag 1 is an index: arm64 first (a manifest the server does not have), then amd64.
        let arm = "sha256:" + String(repeating: "a", count: 64)
        let multi: [String: Any] = [
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                ["mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": 100,
                 "platform": ["architecture": "arm64", "os": "linux"]],
                ["mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": top, "size": manifest.count,
                 "platform": ["architecture": "amd64", "os": "linux"]],
            ],
        ]
        let indexBytes = try JSONSerialization.data(withJSONObject: multi, options: [.sortedKeys])
        try indexBytes.write(to: URL(fileURLWithPath: root + "/manifests/1"))
        try indexBytes.write(to: URL(fileURLWithPath: root + "/manifests/sha256_" + (try Self.sha256(indexBytes))))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: root + "/modes.json"))
        try Data().write(to: URL(fileURLWithPath: root + "/bearer"))
        try Data().write(to: URL(fileURLWithPath: root + "/flaky"))
        let (process, port) = try Self.startServer(root: root)
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        let host = "127.0.0.1:\(port)"

        let home = try ImageCLITests.Home()
        let digest = try PullFixture.allow(home, "\(host)/lie/image:1", "--insecure")
        #expect(digest == top, "the tag pins the linux/amd64 manifest chosen from the index")
        let pulled = try CLI.run(["image", "pull", "\(host)/lie/image@\(digest)", "--insecure"], environment: ["DGRID_HOME": home.path])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(try PullFixture.localNames(home) == ["\(host)/lie/image:1"])

        let tokenLog = (try? String(contentsOfFile: root + "/token.log", encoding: .utf8)) ?? ""
        #expect(tokenLog.contains("service=lie-registry"), "\(tokenLog)")
        #expect(tokenLog.contains("scope=repository") && tokenLog.contains("lie") && tokenLog.contains("pull"), "\(tokenLog)")
        #expect(tokenLog.contains("auth=None"), "anonymous token request: \(tokenLog)")
        let access = (try? String(contentsOfFile: root + "/access.log", encoding: .utf8)) ?? ""
        #expect(access.contains("/_blobstore/"), "blobs came through the redirect: \(access)")
        #expect(!access.contains(" 400 "), "\(access)")
        #expect(!access.contains(String(arm.dropFirst(7))), "the arm64 manifest was never fetched: \(access)")
        // Each blob was fetched three times (two 503s, then the body): retried, not given up.
        let blobFetches = access.split(separator: "\n").filter { $0.contains("/_blobstore/") }
        #expect(blobFetches.count >= 3 * 2, "\(blobFetches)")
        let token = (try? String(contentsOfFile: root + "/token.txt", encoding: .utf8)) ?? "?"
        #expect(!(pulled.stdout + pulled.stderr).contains(token))
    }
}
