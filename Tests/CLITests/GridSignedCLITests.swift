import Foundation
import Testing
import TestSupport

/// Workers require signed tasks by default (docs/ARCHITECTURE.md §9): through the
/// built binaries and a real repository, each kind of bad input a pusher can
/// write is rejected with its reason in tasks/rejected/ and never runs; a
/// task signed by a trusted key runs and its record names the signer.
@Suite(.system, .serialized)
struct GridSignedCLITests {
    final class Grid {
        let dir: String
        let repo: String
        let home: ImageCLITests.Home
        var url: String { "file://" + repo }
        let gridID: String

        init() throws {
            dir = try TempDir.make(prefix: "dgrid-signed").path
            repo = try GridFixture.bareRepository()
            home = try ImageCLITests.Home(requireSignatures: true)
            chmod(home.path, 0o700)
            _ = try home.importBusybox()
            #expect(try home.dgrid("image", "allow", "dgrid/busybox:latest", "--approved-by", "test").status == 0)
            #expect(try home.dgrid("init", "--repo", "file://" + repo).status == 0)
            gridID = try #require(try GridFixture.status(home, "file://" + repo)["grid_id"] as? String)
            for name in ["alice", "mallory"] {
                try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", dir + "/" + name])
            }
            try FileManager.default.createDirectory(atPath: home.path + "/trust", withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let alice = try String(contentsOfFile: dir + "/alice.pub", encoding: .utf8)
            FileManager.default.createFile(atPath: home.path + "/trust/allowed_signers",
                                           contents: Data("alice@example.com \(alice)".utf8), attributes: [.posixPermissions: 0o644])
        }

        deinit { for path in [dir, repo, home.path] { try? FileManager.default.removeItem(atPath: path) } }

        /// A task file whose script leaves a mark in its output, signed by `signer` (nil: unsigned).
        func task(_ id: String, signer: String?, grid: String? = nil) throws -> String {
            let path = dir + "/" + id + ".json"
            let json = #"{"task_id":"\#(id)","script":"echo ran-\#(id)","timeout_seconds":20,"grid":"\#(grid ?? gridID)"}"#
            try Data(json.utf8).write(to: URL(fileURLWithPath: path))
            if let signer {
                try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", dir + "/" + signer, "-n", "dgrid-task", path])
            }
            return path
        }

        /// Pushes files straight into the queue, as any repository writer can.
        func push(_ files: [(local: String, queuePath: String)], prepare: () throws -> Void = {}) throws {
            try prepare()
            try GridFixture.push(repo, files.map { ($0.local, $0.queuePath) })
        }

        func record(_ path: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path + ".log").utf8)) as? [String: Any] ?? [:]
        }
    }

    @Test func onlyTasksSignedByTrustedKeysForThisGridRun() throws {
        let g = try Grid()
        // Submitted the ordinary way: signed by dgrid submit --sign, and unsigned.
        let good = try g.task("good", signer: nil)
        let submitted = try g.home.dgrid("submit", "--repo", g.url, "--sign", "--key", g.dir + "/alice", good)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        _ = try g.task("unsigned", signer: nil)
        #expect(try g.home.dgrid("submit", "--repo", g.url, g.dir + "/unsigned.json").status == 0)
        // Pushed by a writer: an untrusted key, a swapped signature, another grid's task.
        let mallory = try g.task("mallory", signer: "mallory")
        let swapped = try g.task("swapped", signer: nil)
        let other = try g.task("other", signer: "alice")
        let replay = try g.task("elsewhere", signer: "alice", grid: "g-ffffffffffffffffffffffffffffffff")
        try g.push([(mallory, "tasks/queue/mallory.json"), (mallory + ".sig", "tasks/queue/mallory.json.sig"),
                    (swapped, "tasks/queue/swapped.json"), (other + ".sig", "tasks/queue/swapped.json.sig"),
                    (replay, "tasks/queue/elsewhere.json"), (replay + ".sig", "tasks/queue/elsewhere.json.sig")])

        let worker = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let files = try GridFixture.mainFiles(g.repo)
        #expect(files.contains("tasks/completed/node_a-good.json") && files.contains("tasks/completed/node_a-good.json.sig"), "\(files)")
        let ran = try g.record("tasks/completed/node_a-good.json")
        #expect(ran["signed_by"] as? [String] == ["alice@example.com"] && (ran["stdout"] as? String) == "ran-good\n", "\(ran)")
        let expected = [
            "unsigned": "unsigned: this host requires a signature",
            "mallory": "a key not in this host's allowed_signers",
            "swapped": "does not match the file's bytes",
            "elsewhere": "a replay from another grid",
        ]
        for (id, reason) in expected {
            let path = "tasks/rejected/\(id).json"
            #expect(files.contains(path), "\(id): \(files)")
            let record = try g.record(path)
            #expect((record["stderr"] as? String ?? "").contains(reason) || "\(record)".contains(reason), "\(id): \(record)")
            // Nothing ran: no image was resolved, no output of the script.
            #expect(record["image_digest"] == nil || record["image_digest"] is NSNull, "\(id): \(record)")
            #expect(!"\(record)".contains("ran-\(id)"), "\(id) ran: \(record)")
        }
        #expect(!worker.stderr.contains("unsigned tasks allowed"))
        // Every decision is in the host's audit log.
        let audit = try g.home.dgrid("audit", "--json")
        #expect(audit.status == 0, "\(audit.stderr)")
        let events = audit.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let accepted = events.filter { $0["event"] as? String == "signature_accepted" }
        #expect(accepted.count == 1 && accepted[0]["task_id"] as? String == "good" && accepted[0]["principals"] as? [String] == ["alice@example.com"],
                "\(events)")
        for (id, reason) in expected {
            let line = events.first { $0["event"] as? String == "signature_refused" && $0["task_id"] as? String == id }
            #expect((line?["reason"] as? String ?? "").contains(reason), "\(id): \(events)")
        }
        let text = try g.home.dgrid("audit", "--event", "signature_refused")
        #expect(text.stdout.split(separator: "\n").count == 4 && text.stdout.contains("task=mallory"), "\(text.stdout)")

        // A finished task's file and signature pushed back into the queue: never run twice.
        try g.push([(g.dir + "/good.json.committed", "tasks/queue/good.json"), (g.dir + "/good.json.committed.sig", "tasks/queue/good.json.sig")],
                   prepare: {
            try Data(try GridFixture.show(g.repo, "tasks/completed/node_a-good.json").utf8).write(to: URL(fileURLWithPath: g.dir + "/good.json.committed"))
            try Data(try GridFixture.show(g.repo, "tasks/completed/node_a-good.json.sig").utf8).write(to: URL(fileURLWithPath: g.dir + "/good.json.committed.sig"))
        })
        let again = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_b", "--once")
        #expect(again.status == 0, "\(again.stderr)")
        let after = try GridFixture.mainFiles(g.repo)
        #expect(!after.contains("tasks/completed/node_b-good.json") && !after.contains("tasks/queue/good.json"), "\(after)")
        let replayed = after.filter { $0.hasPrefix("tasks/rejected/") && $0.contains("good") }
        #expect(!replayed.isEmpty, "the replayed file is set aside with a reason: \(after)")

        // A writer rewrites main's grid id to another grid's, to replay that grid's signed tasks: the host's pin refuses.
        let otherID = "g-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
        let foreign = try g.task("foreign", signer: "alice", grid: otherID)
        try Data("{\"grid_id\":\"\(otherID)\"}\n".utf8).write(to: URL(fileURLWithPath: g.dir + "/grid.json"))
        try g.push([(g.dir + "/grid.json", ".dgrid/grid.json"), (foreign, "tasks/queue/foreign.json"), (foreign + ".sig", "tasks/queue/foreign.json.sig")])
        #expect(try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once").status == 0)
        let pinned = try g.record("tasks/rejected/foreign.json")
        #expect("\(pinned)".contains("but this host first saw \(g.gridID)") && !"\(pinned)".contains("ran-foreign"), "\(pinned)")
    }

    /// A `.sig` a writer made larger than any signature: the task is rejected
    /// with that reason, and the fold, which moves signatures with their
    /// tasks, neither reads it nor stalls on it.
    @Test func anOversizedSignatureFileIsRefusedAndTheFoldGoesOn() throws {
        let g = try Grid()
        let task = try g.task("bloated", signer: "alice")
        var signature = try Data(contentsOf: URL(fileURLWithPath: task + ".sig"))
        signature.append(Data(repeating: UInt8(ascii: "A"), count: 20_000))
        try signature.write(to: URL(fileURLWithPath: task + ".sig"))
        try g.push([(task, "tasks/queue/bloated.json"), (task + ".sig", "tasks/queue/bloated.json.sig")])
        let worker = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let files = try GridFixture.mainFiles(g.repo)
        #expect(files.contains("tasks/rejected/bloated.json") && !files.contains("tasks/queue/bloated.json")
                && !files.contains("tasks/queue/bloated.json.sig"), "\(files)")
        let record = try g.record("tasks/rejected/bloated.json")
        #expect((record["stderr"] as? String ?? "").contains("signature file refused: larger than 16384 bytes"), "\(record)")
    }

    @Test func allowUnsignedIsAnExplicitLoggedOptOut() throws {
        let g = try Grid()
        _ = try g.task("plain", signer: nil)
        #expect(try g.home.dgrid("submit", "--repo", g.url, g.dir + "/plain.json").status == 0)
        let worker = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once", "--allow-unsigned")
        #expect(worker.status == 0, "\(worker.stderr)")
        #expect(worker.stderr.contains("unsigned tasks allowed") && worker.stderr.contains("--allow-unsigned"), "\(worker.stderr)")
        let audit = try g.home.dgrid("audit")
        #expect(audit.stdout.contains("unsigned_allowed") && audit.stdout.contains("unsigned_run task=plain"), "\(audit.stdout)")
        #expect(try GridFixture.mainFiles(g.repo).contains("tasks/completed/node_a-plain.json"))
    }

    /// Secrets in a task's output never reach the grid: the worker scrubs
    /// them and says how many of which kind, in the record and the audit log.
    @Test func secretsInOutputAreRedactedBeforePublishing() throws {
        let g = try Grid()
        FileManager.default.createFile(atPath: g.home.path + "/trust/policy.toml",
                                       contents: Data("require_signatures = false\nsecret_env = [\"DB_PASSWORD\"]\n".utf8),
                                       attributes: [.posixPermissions: 0o600])
        let token = "ghp_" + String(repeating: "x9Y8", count: 9)
        let path = g.dir + "/leaky.json"
        let json = #"{"task_id":"leaky","script":"echo \#(token); echo \"pw=$DB_PASSWORD\" >&2","timeout_seconds":20,"env":{"DB_PASSWORD":"correct-horse-battery"}}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        #expect(try g.home.dgrid("submit", "--repo", g.url, path).status == 0)
        let worker = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let record = try g.record("tasks/completed/node_a-leaky.json")
        #expect(record["stdout"] as? String == "[REDACTED:github_token]\n" && record["stderr"] as? String == "pw=[REDACTED:secret_env]\n", "\(record)")
        #expect((record["redactions"] as? [String: Int]) == ["github_token": 1, "secret_env": 1], "\(record)")
        // The task file holds what its submitter wrote; the published record holds neither secret.
        let published = try GridFixture.show(g.repo, "tasks/completed/node_a-leaky.json.log")
        #expect(!published.contains(token) && !published.contains("correct-horse-battery"), "\(published)")
        #expect(try g.home.dgrid("audit", "--event", "output_redacted").stdout.contains("task=leaky"))
    }

    @Test func looseTrustFilesStopTheWorker() throws {
        let g = try Grid()
        chmod(g.home.path + "/trust/allowed_signers", 0o666)
        let worker = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once")
        #expect(worker.status == 78 && worker.stderr.contains("writable by group or others") && worker.stderr.contains("chmod go-w"),
                "\(worker.status) \(worker.stderr)")
    }

    /// OpenPGP (`<task>.json.asc`, D-GRID's proposal) against the host's
    /// `trust/openpgp.gpg`: a task signed by a key there runs as its e-mail,
    /// its `.asc` travels with it through the fold; a tampered one is rejected.
    @Test func tasksSignedWithOpenPGPRunAsTheKeysEmail() throws {
        let g = try Grid()
        let gnupg = g.dir + "/gnupg"
        try FileManager.default.createDirectory(atPath: gnupg, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        func gpg(_ args: [String]) throws {
            let r = try ProcessRunner.run("/usr/bin/gpg", ["--homedir", gnupg, "--batch", "--yes", "--passphrase", "", "--pinentry-mode", "loopback"] + args)
            #expect(r.status == 0, "gpg \(args): \(r.stderr)")
        }
        try gpg(["--quick-gen-key", "Carol <carol@example.com>", "ed25519", "sign", "never"])
        try gpg(["--output", g.home.path + "/trust/openpgp.gpg", "--export", "carol@example.com"])
        chmod(g.home.path + "/trust/openpgp.gpg", 0o600)
        let good = try g.task("pgp-good", signer: nil), bad = try g.task("pgp-bad", signer: nil)
        for file in [good, bad] { try gpg(["--armor", "--detach-sign", "--output", file + ".asc", file]) }
        // Changed after signing: the script now does something else.
        let text = try String(contentsOfFile: bad, encoding: .utf8).replacingOccurrences(of: "echo ran-pgp-bad", with: "echo ran-pgp-bad; echo owned")
        try text.write(toFile: bad, atomically: true, encoding: .utf8)
        try g.push([(good, "tasks/queue/pgp-good.json"), (good + ".asc", "tasks/queue/pgp-good.json.asc"),
                    (bad, "tasks/queue/pgp-bad.json"), (bad + ".asc", "tasks/queue/pgp-bad.json.asc")])
        let worker = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_p", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let files = try GridFixture.mainFiles(g.repo)
        #expect(files.contains("tasks/completed/node_p-pgp-good.json.asc") && !files.contains("tasks/queue/pgp-good.json.asc"), "\(files)")
        let ran = try g.record("tasks/completed/node_p-pgp-good.json")
        #expect(ran["signed_by"] as? [String] == ["carol@example.com"] && ran["stdout"] as? String == "ran-pgp-good\n", "\(ran)")
        let refused = try g.record("tasks/rejected/pgp-bad.json")
        #expect((refused["stderr"] as? String ?? "").contains("does not match the file's bytes") && !"\(refused)".contains("owned"), "\(refused)")
        let verified = try g.home.dgrid("verify", good)
        #expect(verified.status == 0 && verified.stdout.contains("signed by carol@example.com (OPENPGP:"), "\(verified.stdout)")
    }
}
