import Foundation
import Glibc
import Testing
import TestSupport

/// The whole image path as a real unprivileged user with subordinate ids and
/// nothing else (docs/ARCHITECTURE.md §5, "Rootless"; docs/THREATS.md, T8): import
/// and pull into the user's own home, layers unpacked with what a user may
/// create (0/0 whiteout devices, `user.overlay.opaque`), runs from an overlay
/// mounted in the sandbox's user namespace, and a worker draining a grid.
@Suite(.system, .serialized, .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/newuidmap"),
                             "needs root to create the user, and newuidmap (uidmap)"))
struct RootlessImageCLITests {
    /// Where dgrid keeps state for a user who set nothing (StateDirectory.forThisUser).
    static func store(_ user: RootlessUser) -> String { user.home + "/.local/share/dgrid" }

    static func dgrid(_ user: RootlessUser, _ args: [String]) throws -> CLI.Result {
        try user.run(CLI.binary, args)
    }

    /// Places a user may write outside its home; nothing of dgrid's may land there.
    static let sharedPlaces = ["/tmp", "/var/tmp", "/dev/shm", "/run"]

    /// What the merged view of OverlayFallbackCLITests' "deep" image must show:
    /// overwrites, whiteouts, an opaque directory, a directory turned file and back.
    static let mergedView = """
        root:overlay
        base keep
        top
        78
        second life
        new
        now a file
        now a dir
        gone: no
        opq: new
        stack: 77 f001 f002 f003
        """
    static let mergedViewScript = """
        awk '$5 == "/" { for (i = 7; $i != "-"; i++); print "root:" $(i+1) }' /proc/self/mountinfo
        cat /data/keep /data/replaced /data/counter /data/revived /opq/new /dir2file /file2dir/inner
        test -e /data/gone && echo gone: yes || echo gone: no
        echo opq: $(ls -A /opq); echo stack: $(ls /stack | wc -l) $(ls /stack | head -3)
        """

    @Test func aLayeredImageImportsIntoTheUsersHomeAndRunsFromAnOverlay() throws {
        let user = try RootlessUser()
        defer { user.remove() }
        let layout = try OverlayFallbackCLITests.layout("deep")
        let imported = try Self.dgrid(user, ["image", "import", layout])
        #expect(imported.status == 0, "import: \(imported.stderr)")
        #expect(try Self.dgrid(user, ["image", "allow", "test/deep:v1", "--approved-by", "test"]).status == 0)

        // The store is in the user's home; layer files keep the image's owners
        // as the user's subordinate ids (unpacked in a user namespace mapped
        // as its sandboxes are); whiteouts and the opaque mark are what an
        // unprivileged user may create.
        let scan = try Self.scanLayers(Self.store(user) + "/layers", user: user)
        #expect(scan["outsideRange"] as? [String] == [], "every layer file is a subordinate id: \(scan)")
        #expect(scan["owned"] as? String == "\(user.subordinateStart + 123):\(user.subordinateGIDStart + 456)", "\(scan)")
        #expect(scan["whiteouts"] as? Int == 3 && scan["opaque"] as? Int == 1, "\(scan)")
        #expect(scan["trusted"] as? Int == 0 && scan["otherDevices"] as? Int == 0, "\(scan)")

        let run = try Self.dgrid(user, ["sandbox", "run", "--image", "test/deep:v1", "--no-cgroup-limits", "--",
                                        "sh", "-c", Self.mergedViewScript + "\nid -u; cat /proc/self/uid_map"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines.dropLast(2).joined(separator: "\n") == Self.mergedView)
        #expect(lines.suffix(2) == ["1000", "0 \(user.subordinateStart) 65536"], "\(lines)")

        // A writable root: the task's writes land in its own upper, never in a layer.
        let written = try Self.dgrid(user, ["sandbox", "run", "--image", "test/deep:v1", "--no-cgroup-limits",
                                            "--writable-rootfs", "--user", "0:0", "--", "sh", "-c", "echo mine > /new && cat /new"])
        #expect(written.status == 0 && written.stdout == "mine\n", "\(written.stderr)")
        let again = try Self.dgrid(user, ["sandbox", "run", "--image", "test/deep:v1", "--no-cgroup-limits", "--",
                                          "sh", "-c", "test -e /new && echo kept || echo gone"])
        #expect(again.stdout == "gone\n", "\(again.stderr)")
        #expect(try user.filesOwned(below: Self.sharedPlaces) == [])
    }

    /// The image's owners and modes hold inside a rootless sandbox: a file the
    /// image gives to 123:456 with mode 0640 is 123:456 there, closed to the
    /// default task user and open to 123:456. Before layers were unpacked in
    /// the subordinate mapping it showed as 65534:65534 and no task user could
    /// read it. Layers so owned are still removed by `gc` (the user could not
    /// delete them as itself).
    @Test func imageOwnersHoldInsideARootlessSandboxAndGCStillRemovesLayers() throws {
        let user = try RootlessUser()
        defer { user.remove() }
        let layout = try OverlayFallbackCLITests.layout("deep")
        #expect(try Self.dgrid(user, ["image", "import", layout]).status == 0)
        #expect(try Self.dgrid(user, ["image", "allow", "test/deep:v1", "--approved-by", "test"]).status == 0)

        let asDefault = try Self.dgrid(user, ["sandbox", "run", "--image", "test/deep:v1", "--no-cgroup-limits", "--",
                                              "sh", "-c", "stat -c %u:%g:%a /data/owned; cat /data/owned 2>&1 | grep -c 'Permission denied'"])
        #expect(asDefault.status == 0 && asDefault.stdout == "123:456:640\n1\n", "\(asDefault.stdout) \(asDefault.stderr)")
        let asOwner = try Self.dgrid(user, ["sandbox", "run", "--image", "test/deep:v1", "--no-cgroup-limits",
                                            "--user", "123:456", "--", "sh", "-c", "cat /data/owned"])
        #expect(asOwner.status == 0 && asOwner.stdout == "owned\n", "\(asOwner.stdout) \(asOwner.stderr)")

        // A gc that crashed mid-removal left a layer renamed away; the next gc
        // removes it although the user owns none of its files.
        let layers = Self.store(user) + "/layers"
        let hex = try #require(try FileManager.default.contentsOfDirectory(atPath: layers).first { $0.count == 64 })
        #expect(try user.run("/bin/mv", [layers + "/" + hex, layers + "/.gc-\(hex)-crashed"]).status == 0)
        let gc = try Self.dgrid(user, ["image", "gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(!FileManager.default.fileExists(atPath: layers + "/.gc-\(hex)-crashed"), "\(gc.stdout)")
    }

    @Test func pullFromALoopbackRegistryIntoTheUsersHomeThenRun() throws {
        let port = try FreePort.loopback()
        let registry = try PullFixture.startRegistry(port: port)
        defer { PullFixture.stop(registry) }
        let layout = try OverlayFallbackCLITests.layout("deep")
        let pushed = try ProcessRunner.run("/usr/bin/skopeo", ["copy", "-q", "--dest-tls-verify=false", "oci:" + layout,
                                                               "docker://127.0.0.1:\(port)/test/deep:1"])
        #expect(pushed.status == 0, "skopeo: \(pushed.stderr)")
        let user = try RootlessUser()
        defer { user.remove() }
        let name = "127.0.0.1:\(port)/test/deep:1"
        let allowed = try Self.dgrid(user, ["image", "allow", name, "--insecure", "--approved-by", "test"])
        #expect(allowed.status == 0, "allow: \(allowed.stderr)")
        let digest = String(allowed.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let pulled = try Self.dgrid(user, ["image", "pull", "127.0.0.1:\(port)/test/deep@\(digest)", "--insecure"])
        #expect(pulled.status == 0, "pull: \(pulled.stderr)")
        #expect(pulled.stderr.contains("80 layers (80 unpacked now)"), "\(pulled.stderr)")

        let run = try Self.dgrid(user, ["sandbox", "run", "--image", name, "--no-cgroup-limits", "--",
                                        "sh", "-c", Self.mergedViewScript])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
            .joined(separator: "\n") == Self.mergedView)
        #expect(try user.filesOwned(below: Self.sharedPlaces) == [])
    }

    /// Rootless on a host that delegates no cgroup to the user (this one):
    /// the worker runs tasks when told to go without limits, and says which
    /// limits it could not enforce. Before `worker --no-cgroup-limits` every
    /// task failed with "cgroupsRequired".
    @Test func aWorkerDrainsAGridOverGitDaemonAsTheUser() throws {
        let port = try FreePort.loopback()
        let base = try PullFixture.tempDir("dgrid-rootless-grid")
        defer { try? FileManager.default.removeItem(atPath: base) }
        #expect(try GridFixture.git(["init", "--bare", "-q", "--initial-branch=main", base + "/grid.git"]).status == 0)
        let daemon = CLI.packageRoot.appendingPathComponent("scripts/git-daemon.sh").path
        let started = try ProcessRunner.run(daemon, ["start", base, "\(port)"])
        #expect(started.status == 0, "\(started.stderr)")
        defer { _ = try? ProcessRunner.run(daemon, ["stop", base]) }
        let url = "git://127.0.0.1:\(port)/grid.git"

        let user = try RootlessUser()
        defer { user.remove() }
        #expect(try Self.dgrid(user, ["image", "import", try ImageCLITests.busyboxLayout()]).status == 0)
        #expect(try Self.dgrid(user, ["image", "allow", "dgrid/busybox:latest", "--approved-by", "test"]).status == 0)
        let tasks = base + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)
        try GridFixture.taskFile(tasks, "who", "id -u; cat /proc/self/uid_map")
        try GridFixture.taskFile(tasks, "fails", "echo bad >&2; exit 3")
        _ = try ProcessRunner.run("/bin/chmod", ["-R", "a+rX", base])
        #expect(try Self.dgrid(user, ["init", "--repo", url]).status == 0)
        let submitted = try Self.dgrid(user, ["submit", "--repo", url, tasks])
        #expect(submitted.status == 0, "\(submitted.stderr)")

        let worker = try Self.dgrid(user, ["worker", "--repo", url, "--node-id", "node_rootless", "--once", "--no-cgroup-limits", "--allow-unsigned"])
        #expect(worker.status == 0, "\(worker.stderr)")
        #expect(worker.stderr.contains("not enforced, no cgroup: memory, cpus, pids"), "\(worker.stderr)")
        let files = try GridFixture.mainFiles(base + "/grid.git")
        #expect(files.contains("tasks/completed/node_rootless-who.json.log"), "\(files)")
        #expect(files.contains("tasks/failed/node_rootless-fails.json.log"), "\(files)")
        let who = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(base + "/grid.git",
                                                   "tasks/completed/node_rootless-who.json.log").utf8)) as? [String: Any] ?? [:]
        let lines = (who["stdout"] as? String ?? "").split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines == ["1000", "0 \(user.subordinateStart) 65536"], "\(who)")
        #expect(try user.filesOwned(below: Self.sharedPlaces) == [])
    }
}

extension RootlessImageCLITests {
    /// Walks the layer store (Python's os module, not following symlinks):
    /// entries owned by anyone but the store's owner, 0/0 whiteout devices,
    /// other devices, `user.overlay.opaque=y` and any `trusted.overlay.*`.
    /// What the layers directory holds: files owned outside the user's
    /// subordinate range, overlay whiteouts and marks, and who owns
    /// `data/owned` (the image gives it to 123:456).
    static func scanLayers(_ layers: String, user: RootlessUser) throws -> [String: Any] {
        let r = try ProcessRunner.run("/usr/bin/python3", ["-c", """
            import json, os, stat, sys
            top, first = sys.argv[1], int(sys.argv[2])
            out = {"outsideRange": [], "whiteouts": 0, "otherDevices": 0, "opaque": 0, "trusted": 0, "owned": None}
            for d, dirs, files in os.walk(top):
                for name in dirs + files:
                    p = os.path.join(d, name); st = os.lstat(p)
                    if not first <= st.st_uid < first + 65536: out["outsideRange"].append(p)
                    if p.endswith("/data/owned"): out["owned"] = "%d:%d" % (st.st_uid, st.st_gid)
                    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                        out["whiteouts" if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else "otherDevices"] += 1
                    names = [] if stat.S_ISLNK(st.st_mode) else os.listxattr(p, follow_symlinks=False)
                    if "user.overlay.opaque" in names and os.getxattr(p, "user.overlay.opaque") == b"y": out["opaque"] += 1
                    out["trusted"] += sum(n.startswith("trusted.overlay.") for n in names)
            print(json.dumps(out))
            """, layers, String(user.subordinateStart)])
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
    }
}
