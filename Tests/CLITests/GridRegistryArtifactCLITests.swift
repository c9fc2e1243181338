import Foundation
import Testing
import TestSupport

/// This file's servers listen on ports the kernel picks once per run, never fixed numbers.
private let registryPorts = FreePort.loopbackPorts(6)

/// The registry store end to end (docs/ARCHITECTURE.md §10, docs/THREATS.md T19),
/// against Debian's real docker-registry on loopback (scripts/registry.sh),
/// started and stopped by each test: files past what Git takes pushed as one
/// OCI artifact by the worker's helper and read back verified by `dgrid result
/// --download` and a dependent's `/inputs`; a blob swapped in the registry's
/// storage refused; a forged location never contacted; basic auth from the
/// registry configuration with the password never shown; a registry that stops
/// mid-task is a host fault and the task runs again.
@Suite(.system, .serialized) struct GridRegistryArtifactCLITests {
    static let repository = "grid/artifacts"

    private func record(_ repo: String, _ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
    }

    /// A worker home whose registry configuration lets plain HTTP to `host` (and, given, its credentials).
    static func home(host: String, credentials: String? = nil) throws -> ImageCLITests.Home {
        let home = try GridFixture.workerHome()
        let auths = credentials.map { #","auths":{"\#(host)":{"auth":"\#(Data($0.utf8).base64EncodedString())"}}"# } ?? ""
        let path = home.path + "/registry.json"
        try Data(#"{"insecure-registries":["\#(host)"]\#(auths)}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(chmod(path, 0o600) == 0)
        return home
    }

    static func sha256(file: String) throws -> String {
        String(try ProcessRunner.run("/usr/bin/sha256sum", [file]).stdout.prefix(64))
    }

    /// `skopeo inspect --raw` of the manifest at `location` (`HOST/PATH@sha256:…`), as JSON.
    static func manifest(_ location: String, creds: String? = nil) throws -> [String: Any] {
        let r = try ProcessRunner.run("/usr/bin/skopeo", ["inspect", "--raw", "--tls-verify=false"] + (creds.map { ["--creds", $0] } ?? [])
                                      + ["docker://" + location])
        #expect(r.status == 0, "skopeo inspect: \(r.stderr)")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
    }

    /// Where docker-registry keeps blob `hex` under the directory `scripts/registry.sh start` was given.
    static func storedBlob(_ registry: String, _ hex: String) -> String {
        "\(registry)/data/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    /// Files under `dir`, hidden ones too.
    static func entries(_ dir: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted() ?? []
    }

    /// A TCP listener that notes every connection in `log`: a host no byte should reach.
    static func listener(port: Int, log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", """
            import socket, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
            open(sys.argv[2] + ".ready", "w").close()
            while True:
                c, _ = s.accept(); open(sys.argv[2], "a").write("connected\\n"); c.close()
            """, "\(port)", log]
        try process.run()
        _ = GridFaultCLITests.waitUntil(10) { FileManager.default.fileExists(atPath: log + ".ready") }
        return process
    }

    @Test func largeFilesGoToTheRegistryAsAnOCIArtifactAndComeBackVerified() throws {
        let port = registryPorts[0]
        let host = "127.0.0.1:\(port)", store = "\(host)/\(Self.repository)"
        let registry = try PullFixture.startRegistry(port: port)
        defer { PullFixture.stop(registry) }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try Self.home(host: host)
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-registry-artifacts").path
        try GridFixture.taskFile(tasks, "make", "head -c 3145728 /dev/urandom > /output/big.bin; echo small > /output/small.txt; "
                                 + "sha256sum /output/big.bin | cut -d' ' -f1", timeout: 60)
        try GridFixture.taskFile(tasks, "use", "sha256sum /inputs/make/artifacts/big.bin | cut -d' ' -f1; cat /inputs/make/artifacts/small.txt",
                                 extra: #","depends_on":["make"]"#)
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wr", "--once", "--set", "artifact_registry=\(store)")
        #expect(worker.status == 0, "\(worker.stderr)")

        // The small file in Git, the large one in the registry: one OCI artifact for the task.
        let made = try record(repo, "tasks/completed/wr-make.json.log")
        let hex = (made["stdout"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let artifacts = made["artifacts"] as? [[String: Any]] ?? []
        let big = try #require(artifacts.first { $0["path"] as? String == "big.bin" }, "\(artifacts)")
        let small = try #require(artifacts.first { $0["path"] as? String == "small.txt" }, "\(artifacts)")
        #expect(small["store"] as? String == "git", "\(small)")
        #expect(big["store"] as? String == "registry" && big["digest"] as? String == "sha256:\(hex)" && big["size"] as? Int == 3_145_728, "\(big)")
        let location = big["location"] as? String ?? ""
        #expect(location.hasPrefix("\(store)@sha256:") && location.count == store.count + 72, "\(location)")
        #expect(!(try GridFixture.mainFiles(repo)).contains("artifacts/sha256/\(hex)"), "nothing of it in Git")
        // As the registry has it: image-spec 1.1, the empty config, the file as a titled layer, tagged by the task.
        let manifest = try Self.manifest(location)
        #expect(manifest["mediaType"] as? String == "application/vnd.oci.image.manifest.v1+json", "\(manifest)")
        #expect(manifest["artifactType"] as? String == "application/vnd.dgrid.task.output.v1", "\(manifest)")
        let config = manifest["config"] as? [String: Any] ?? [:]
        #expect(config["mediaType"] as? String == "application/vnd.oci.empty.v1+json" && config["size"] as? Int == 2, "\(config)")
        let layers = manifest["layers"] as? [[String: Any]] ?? []
        #expect(layers.count == 1, "only what Git did not take: \(layers)")
        #expect(layers.first?["digest"] as? String == "sha256:\(hex)" && layers.first?["size"] as? Int == 3_145_728, "\(layers)")
        #expect((layers.first?["annotations"] as? [String: String])?["org.opencontainers.image.title"] == "big.bin", "\(layers)")
        #expect((manifest["annotations"] as? [String: String])?["org.dgrid.task"] == "make", "\(manifest)")
        let tags = try ProcessRunner.run("/usr/bin/skopeo", ["list-tags", "--tls-verify=false", "docker://\(store)"])
        let digest = String(location.split(separator: "@").last ?? "")
        #expect(tags.stdout.contains("\"make_\(digest.dropFirst(7).prefix(12))\""), "\(tags.stdout) \(tags.stderr)")

        // The dependent read it under /inputs, verified.
        let use = try record(repo, "tasks/completed/wr-use.json.log")
        #expect(use["stdout"] as? String == "\(hex)\nsmall\n", "\(use)")

        // Downloads fetch only from a registry this host names; every byte checked.
        let refusedDir = try TempDir.make(prefix: "dgrid-download-untrusted").path
        let untrusted = try home.dgrid("result", "--repo", url, "make", "--download", refusedDir)
        #expect(untrusted.status == 1 && untrusted.stderr.contains("artifact \"big.bin\": refused: stored in \(store)"), "\(untrusted.stderr)")
        #expect(Self.entries(refusedDir) == ["small.txt"], "\(Self.entries(refusedDir))")
        let out = try TempDir.make(prefix: "dgrid-download-registry").path
        let download = try home.dgrid("result", "--repo", url, "make", "--download", out, "--artifact-registry", store)
        #expect(download.status == 0, "\(download.stderr)")
        #expect(try Self.sha256(file: out + "/big.bin") == hex)
        #expect(try String(contentsOfFile: out + "/small.txt", encoding: .utf8) == "small\n")
        // The environment names it too, as it does for a worker.
        let viaEnvironment = try CLI.run(["result", "--repo", url, "make", "--download", try TempDir.make(prefix: "dgrid-download-env").path],
                                         environment: ["DGRID_HOME": home.path, "DGRID_ARTIFACT_REGISTRY": store])
        #expect(viaEnvironment.status == 0, "\(viaEnvironment.stderr)")

        // Bytes swapped in the registry's storage: one line, corrupt, nothing written under the directory.
        let blob = Self.storedBlob(registry, hex)
        #expect(FileManager.default.fileExists(atPath: blob), "docker-registry keeps it at \(blob)")
        try Data((0..<3_145_728).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: URL(fileURLWithPath: blob))
        let corruptDir = try TempDir.make(prefix: "dgrid-download-corrupt").path
        let corrupt = try home.dgrid("result", "--repo", url, "make", "--download", corruptDir, "--artifact-registry", store)
        let lines = corrupt.stderr.split(separator: "\n").filter { $0.contains("big.bin") }
        #expect(corrupt.status == 1 && lines.count == 1 && lines.first?.contains("artifact \"big.bin\": corrupt") == true, "\(corrupt.stderr)")
        #expect(Self.entries(corruptDir) == ["small.txt"], "nothing of big.bin, not even a hidden file: \(Self.entries(corruptDir))")
        // A blob the registry never had: missing, one line.
        try FileManager.default.removeItem(atPath: (blob as NSString).deletingLastPathComponent)
        let missing = try home.dgrid("result", "--repo", url, "make", "--download", try TempDir.make(prefix: "dgrid-download-missing").path,
                                     "--artifact-registry", store)
        #expect(missing.status == 1 && missing.stderr.contains("artifact \"big.bin\": missing: not in \(store)"), "\(missing.stderr)")
    }

    /// A record is anyone's to push: one that points its artifact at another
    /// host is refused by a download and left out of a dependent's `/inputs`,
    /// and that host never sees a connection (nor a credential).
    @Test func aForgedLocationIsNeverContacted() throws {
        let (port, trap) = (registryPorts[1], registryPorts[2])
        let host = "127.0.0.1:\(port)", store = "\(host)/\(Self.repository)"
        let registry = try PullFixture.startRegistry(port: port)
        defer { PullFixture.stop(registry) }
        let work = try TempDir.make(prefix: "dgrid-registry-forged").path
        let log = work + "/connections"
        let listener = try Self.listener(port: trap, log: log)
        // SIGKILL: the test process blocks SIGTERM in the thread that spawned it, and children inherit the mask.
        defer { kill(listener.processIdentifier, SIGKILL); listener.waitUntilExit() }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try Self.home(host: host)
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let first = try TempDir.make(prefix: "dgrid-registry-forged-make").path
        try GridFixture.taskFile(first, "make", "head -c 1048576 /dev/zero > /output/big.bin")
        #expect(try home.dgrid("submit", "--repo", url, first).status == 0)
        #expect(try home.dgrid("worker", "--repo", url, "--node-id", "wf", "--once", "--set", "artifact_registry=\(store)").status == 0)
        let path = "tasks/completed/wf-make.json.log"
        let text = try GridFixture.show(repo, path)
        #expect(text.contains("\(store)@sha256:"), "\(text)")
        for forgedStore in ["127.0.0.1:\(trap)/\(Self.repository)", "127.0.0.1:\(trap)/other/place", "\(host)/other/repo"] {
            try Data(text.replacingOccurrences(of: "\(store)@", with: "\(forgedStore)@").utf8).write(to: URL(fileURLWithPath: work + "/forged.json.log"))
            try GridFixture.push(repo, [(work + "/forged.json.log", path)])
            let out = try TempDir.make(prefix: "dgrid-download-forged").path
            let download = try home.dgrid("result", "--repo", url, "make", "--download", out, "--artifact-registry", store)
            #expect(download.status == 1 && download.stderr.contains("artifact \"big.bin\": refused: stored in \(forgedStore)"), "\(download.stderr)")
            #expect(Self.entries(out).isEmpty, "\(Self.entries(out))")
        }
        // A malformed location is refused by its shape.
        try Data(text.replacingOccurrences(of: "\(store)@", with: "http://user:pw@\(host)/x@").utf8).write(to: URL(fileURLWithPath: work + "/forged.json.log"))
        try GridFixture.push(repo, [(work + "/forged.json.log", path)])
        let malformed = try home.dgrid("result", "--repo", url, "make", "--download", try TempDir.make(prefix: "dgrid-download-bad").path,
                                       "--artifact-registry", store)
        #expect(malformed.status == 1 && malformed.stderr.contains("is not a registry artifact location"), "\(malformed.stderr)")
        // A dependent of the forged record: it runs, without the artifact; the trap host sees nothing.
        try Data(text.replacingOccurrences(of: "\(store)@", with: "127.0.0.1:\(trap)/\(Self.repository)@").utf8)
            .write(to: URL(fileURLWithPath: work + "/forged.json.log"))
        try GridFixture.push(repo, [(work + "/forged.json.log", path)])
        let tasks = try TempDir.make(prefix: "dgrid-registry-forged-use").path
        try GridFixture.taskFile(tasks, "use", "ls /inputs/make; ls /inputs/make/artifacts 2>&1 | head -1", extra: #","depends_on":["make"]"#)
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wf", "--once", "--set", "artifact_registry=\(store)")
        #expect(worker.status == 0, "\(worker.stderr)")
        let use = try record(repo, "tasks/completed/wf-use.json.log")
        #expect((use["stdout"] as? String ?? "").contains("result.json"), "\(use)")
        #expect(!(use["stdout"] as? String ?? "").contains("big.bin"), "\(use)")
        #expect(!FileManager.default.fileExists(atPath: log), "the forged host was contacted: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// A registry behind basic auth: the worker and the download use the
    /// credentials of the registry configuration file; the password shows
    /// nowhere — not in output, records or the grid's history.
    @Test func basicAuthCredentialsComeFromTheConfigurationAndNeverShow() throws {
        let port = registryPorts[3]
        let host = "127.0.0.1:\(port)", store = "\(host)/\(Self.repository)"
        let password = "pw-\(UUID().uuidString.prefix(12))"
        let work = try TempDir.make(prefix: "dgrid-registry-auth").path
        let made = try PullFixture.sh([PullFixture.script, "htpasswd", work + "/htpasswd", "alice"], stdin: password)
        #expect(made.status == 0, "\(made.stderr)")
        let registry = try PullFixture.startRegistry(port: port, htpasswd: work + "/htpasswd")
        defer { PullFixture.stop(registry) }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try Self.home(host: host, credentials: "alice:\(password)")
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-registry-auth-tasks").path
        try GridFixture.taskFile(tasks, "make", "head -c 2097152 /dev/urandom > /output/big.bin; sha256sum /output/big.bin | cut -d' ' -f1")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        // Without credentials: the worker will not drain — one line naming the 401 — and claims nothing.
        let stranger = try Self.home(host: host)
        let refused = try stranger.dgrid("worker", "--repo", url, "--node-id", "wx", "--once", "--set", "artifact_registry=\(store)")
        #expect(refused.status != 0 && refused.stderr.contains("cannot keep large artifacts") && refused.stderr.contains("401"), "\(refused.stderr)")
        #expect(try GridFixture.refs(repo, "refs/dgrid/claims").isEmpty)

        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wa", "--once", "--set", "artifact_registry=\(store)")
        #expect(worker.status == 0, "\(worker.stderr)")
        let record = try record(repo, "tasks/completed/wa-make.json.log")
        let hex = (record["stdout"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let big = try #require((record["artifacts"] as? [[String: Any]])?.first)
        #expect(big["store"] as? String == "registry", "\(big)")
        let out = try TempDir.make(prefix: "dgrid-download-auth").path
        let download = try home.dgrid("result", "--repo", url, "make", "--download", out, "--artifact-registry", store)
        #expect(download.status == 0, "\(download.stderr)")
        #expect(try Self.sha256(file: out + "/big.bin") == hex)
        let manifest = try Self.manifest(big["location"] as? String ?? "", creds: "alice:\(password)")
        #expect(manifest["artifactType"] as? String == "application/vnd.dgrid.task.output.v1", "\(manifest)")

        let history = try GridFixture.git(["--git-dir", repo, "log", "-p", "--all"]).stdout
        let base64 = Data("alice:\(password)".utf8).base64EncodedString()
        for text in [refused.stdout, refused.stderr, worker.stdout, worker.stderr, download.stdout, download.stderr, history] {
            #expect(!text.contains(password) && !text.contains(base64))
        }
    }
}

/// An upload slower than the registry client's idle timeout: the registry
/// answers only once it has the whole body, so the time spent sending must
/// count as activity (before, a 1 GiB push over a link slower than 35 MB/s
/// failed as "nothing received for 30 s", and again on every retry).
@Suite(.system, .serialized) struct GridRegistrySlowLinkCLITests {
    /// A forwarder that lets ~8 MB/s through towards the registry.
    static let proxy = #"""
    import socket, sys, threading, time
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    def pipe(src, dst, rate):
        try:
            while True:
                data = src.recv(65536)
                if not data: break
                dst.sendall(data)
                if rate: time.sleep(len(data) / rate)
        except OSError: pass
        finally:
            for s in (src, dst):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass
    server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Small buffers before the throttle: what the sender has handed over is nearly what went through.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    server.bind(("127.0.0.1", listen)); server.listen(16)
    open(sys.argv[3], "w").close()
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", target))
        threading.Thread(target=pipe, args=(client, upstream, 8e6), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client, 0), daemon=True).start()
    """#

    @Test func anUploadLongerThanTheIdleTimeoutIsNotASilentRegistry() throws {
        let (port, proxyPort) = (registryPorts[4], registryPorts[5])
        let registry = try PullFixture.startRegistry(port: port)
        defer { PullFixture.stop(registry) }
        let work = try TempDir.make(prefix: "dgrid-registry-slow").path
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        proxy.arguments = ["-c", Self.proxy, "\(proxyPort)", "\(port)", work + "/ready"]
        try proxy.run()
        defer { kill(proxy.processIdentifier, SIGKILL); proxy.waitUntilExit() }
        #expect(GridFaultCLITests.waitUntil(10) { FileManager.default.fileExists(atPath: work + "/ready") })
        let home = try GridRegistryArtifactCLITests.home(host: "127.0.0.1:\(proxyPort)")
        // 40 MiB at ~8 MB/s: about 5 s of sending, more than twice the idle timeout (2 s).
        let file = work + "/data.bin"
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        try random.readData(ofLength: 40 << 20).write(to: URL(fileURLWithPath: file))
        let helper = (CLI.binary as NSString).deletingLastPathComponent + "/dgrid-registry"
        let environment = ["DGRID_HOME": home.path, "DGRID_REGISTRY_TIMEOUT": "2"]
        let started = Date()
        let pushed = try ProcessRunner.run(helper, ["artifact", "push", "--repository", "127.0.0.1:\(proxyPort)/slow/link", "--tag", "t",
                                                    "--file", "data.bin=\(file)"], environment: environment)
        let seconds = Date().timeIntervalSince(started)
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(seconds > 4, "the link was not slow enough to test anything: \(seconds) s")
        let hex = try GridRegistryArtifactCLITests.sha256(file: file)
        let back = work + "/back.bin"
        let fetched = try ProcessRunner.run(helper, ["artifact", "fetch", "--repository", "127.0.0.1:\(proxyPort)/slow/link", "--digest", "sha256:\(hex)",
                                                     "--size", "\(40 << 20)", "--out", back], environment: environment)
        #expect(fetched.status == 0, "\(fetched.stderr)")
        #expect(try GridRegistryArtifactCLITests.sha256(file: back) == hex)
    }
}

/// The registry stops while a task runs: its push fails, which is this host's
/// fault, not the task's verdict (docs/ARCHITECTURE.md §7, §10). The claim is
/// given back (the task is runnable again at once, the attempt in its
/// history), the worker says it is unhealthy and claims nothing more; once the
/// registry is back, a worker completes the task with its artifact kept.
@Suite(.system, .serialized) struct GridRegistryDownCLITests {
    private static let port = FreePort.loopbackPorts(1)[0]

    @Test func aRegistryThatStopsMidTaskIsAHostFaultAndTheTaskRunsAgain() throws {
        let host = "127.0.0.1:\(Self.port)", store = "\(host)/\(GridRegistryArtifactCLITests.repository)"
        let registry = try PullFixture.startRegistry(port: Self.port)
        defer { PullFixture.stop(registry) }
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridRegistryArtifactCLITests.home(host: host)
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-registry-down").path
        try GridFixture.taskFile(tasks, "slow", "head -c 2097152 /dev/urandom > /output/big.bin; sleep 4; echo done", timeout: 60)
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)

        let first = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "wdown", "--once", "--set", "artifact_registry=\(store)"],
                                                 home: home, log: tasks + "/first.log")
        let running = try GridFaultCLITests.waitUntil(30) {
            !((try GridFixture.status(home, url)["running"] as? [[String: Any]]) ?? []).isEmpty
        }
        #expect(running, "\((try? String(contentsOfFile: tasks + "/first.log", encoding: .utf8)) ?? "")")
        PullFixture.stop(registry)
        first.waitUntilExit()
        let log = (try? String(contentsOfFile: tasks + "/first.log", encoding: .utf8)) ?? ""
        #expect(first.terminationStatus != 0 && log.contains("unhealthy"), "\(log)")
        #expect(log.contains("host fault") && log.contains("artifact registry"), "\(log)")
        var files = try GridFixture.mainFiles(repo)
        #expect(!files.contains { ($0.hasPrefix("tasks/completed/") || $0.hasPrefix("tasks/failed/")) && !$0.hasSuffix(".gitkeep") }, "\(files)")
        #expect(files.contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix("slow.json") }, "still runnable: \(files)")
        #expect(try GridFixture.refs(repo, "refs/dgrid/results").isEmpty, "no result was published")
        let nodes = try GridFixture.status(home, url)["node_records"] as? [[String: Any]] ?? []
        let node = nodes.first { $0["node_id"] as? String == "wdown" }
        #expect(node?["health"] as? String == "unhealthy" && (node?["reason"] as? String ?? "").contains("artifact registry \(store)"), "\(nodes)")

        // Still down: a draining worker will not start.
        let refused = try home.dgrid("worker", "--repo", url, "--node-id", "wdown", "--once", "--set", "artifact_registry=\(store)")
        #expect(refused.status != 0 && refused.stderr.contains("cannot keep large artifacts"), "\(refused.stderr)")

        // Back up: the task completes, its artifact kept, the host fault in its history.
        let restarted = try PullFixture.sh([PullFixture.script, "start", registry, "\(Self.port)"])
        #expect(restarted.status == 0, "\(restarted.stderr)")
        let second = try home.dgrid("worker", "--repo", url, "--node-id", "wup", "--once", "--set", "artifact_registry=\(store)")
        #expect(second.status == 0, "\(second.stderr)")
        files = try GridFixture.mainFiles(repo)
        let done = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "tasks/completed/wup-slow.json.log").utf8)) as? [String: Any] ?? [:]
        #expect((done["artifacts"] as? [[String: Any]])?.first?["store"] as? String == "registry", "\(done)")
        let earlier = done["previous_attempts"] as? [[String: Any]] ?? []
        #expect(earlier.count == 1 && earlier.first?["node_id"] as? String == "wdown" && earlier.first?["end"] as? String == "host_fault", "\(earlier)")
    }
}
