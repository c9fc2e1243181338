import Foundation
import Testing
import TestSupport

/// Node keys and signed records (docs/ARCHITECTURE.md §11), through the built
/// binaries and a real repository: a worker signs its claims, heartbeats and
/// results with its own key (OpenSSH's ssh-keygen verifies them), the fold keeps
/// each record's signature on main, and refuses — audits, drops, and lets the task
/// run again — a result that is unsigned, signed by another node's key, changed
/// after signing, or signed by a revoked key; under allowed_workers, by a key not listed for its node.
@Suite(.system, .serialized)
struct GridNodeTrustCLITests {
    final class Grid {
        let dir: String
        let repo: String
        let home: ImageCLITests.Home
        var url: String { "file://" + repo }

        init() throws {
            dir = try TempDir.make(prefix: "dgrid-nodetrust").path
            repo = try GridFixture.bareRepository()
            home = try GridFixture.workerHome()
            chmod(home.path, 0o700)
            #expect(try home.dgrid("init", "--repo", url).status == 0)
        }

        deinit { for path in [dir, repo, home.path] { try? FileManager.default.removeItem(atPath: path) } }

        func submit(_ ids: [String], home: ImageCLITests.Home? = nil) throws {
            for id in ids { try GridFixture.taskFile(dir, id, "echo ran-\(id)") }
            let r = try (home ?? self.home).dgrid(["submit", "--repo", url] + ids.map { dir + "/" + $0 + ".json" })
            #expect(r.status == 0, "\(r.stderr)")
        }

        /// `node_id ssh-ed25519 KEY` and the fingerprint, as `dgrid node show` prints them for `home`.
        func nodeLine(_ home: ImageCLITests.Home, _ node: String) throws -> (line: String, fingerprint: String) {
            let r = try home.dgrid("node", "show", "--node-id", node)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            return (lines.first ?? "", lines.dropFirst().first ?? "")
        }

        /// OpenSSH's verdict on `signature` over `bytes` by `node` under `allowed` (allowed_signers lines).
        func sshVerifies(_ bytes: String, signature: String, node: String, allowed: String) throws -> Bool {
            let work = try TempDir.make(prefix: "dgrid-verify").path
            defer { try? FileManager.default.removeItem(atPath: work) }
            try Data(bytes.utf8).write(to: URL(fileURLWithPath: work + "/record"))
            try Data(signature.utf8).write(to: URL(fileURLWithPath: work + "/record.sig"))
            try Data((allowed + "\n").utf8).write(to: URL(fileURLWithPath: work + "/allowed"))
            let r = try Shell.run(["sh", "-c", "ssh-keygen -Y verify -f \(work)/allowed -I \(node) -n dgrid-result -s \(work)/record.sig < \(work)/record"])
            return r.status == 0
        }

        /// Publishes a result for `task` in `node`'s name as any repository writer can:
        /// `result.json` (and `result.json.sig` when `signWith` names a private key), pushed to its result ref.
        /// `tamper`: changes the record after it was signed.
        func forgeResult(_ task: String, node: String, signWith key: String?, tamper: Bool = false, signature junk: [UInt8]? = nil) throws {
            let work = try TempDir.make(prefix: "dgrid-forge").path
            defer { try? FileManager.default.removeItem(atPath: work) }
            let record = #"{"task_id":"\#(task)","node_id":"\#(node)","exit_code":0,"stdout":"forged-\#(task)\n","stderr":"","timestamp":"2026-12-05T00:00:00Z","status":"completed","attempt":1}"#
            try Data(record.utf8).write(to: URL(fileURLWithPath: work + "/result.json"))
            if let key {
                try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", key, "-n", "dgrid-result", work + "/result.json"])
            }
            if let junk { try Data(junk).write(to: URL(fileURLWithPath: work + "/result.json.sig")) }
            if tamper {
                try Data(record.replacingOccurrences(of: "forged-", with: "FORGED-").utf8).write(to: URL(fileURLWithPath: work + "/result.json"))
            }
            for args in [["init", "-q", work], ["-C", work, "add", "-A"],
                         ["-C", work, "-c", "user.name=f", "-c", "user.email=f@f", "commit", "-q", "-m", "forged"],
                         ["-C", work, "push", "-q", repo, "HEAD:refs/dgrid/results/\(task)"]] {
                let r = try GridFixture.git(args)
                #expect(r.status == 0, "\(args): \(r.stderr)")
            }
        }

        func audit(_ home: ImageCLITests.Home) throws -> [[String: Any]] {
            let text = (try? String(contentsOfFile: home.path + "/audit.log", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
    }

    @Test func aWorkerSignsEveryRecordAndTheFoldKeepsItsSignatureOnMain() throws {
        let g = try Grid()
        try g.submit(["t1"])
        let worker = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        // Made on first use, 0600, in the worker's home.
        var info = stat()
        #expect(lstat(g.home.path + "/node/id_ed25519", &info) == 0 && info.st_mode & 0o777 == 0o600)
        let (line, fingerprint) = try g.nodeLine(g.home, "node_a")
        #expect(line.hasPrefix("node_a ssh-ed25519 ") && fingerprint.hasPrefix("SHA256:"), "\(line) \(fingerprint)")

        let files = try GridFixture.mainFiles(g.repo)
        #expect(files.contains("tasks/completed/node_a-t1.json.log.sig"), "\(files)")
        let record = try GridFixture.show(g.repo, "tasks/completed/node_a-t1.json.log")
        let signature = try GridFixture.show(g.repo, "tasks/completed/node_a-t1.json.log.sig")
        #expect(try g.sshVerifies(record, signature: signature, node: "node_a", allowed: line))
        // Not by another node's name, not for another record.
        #expect(try !g.sshVerifies(record, signature: signature, node: "node_b", allowed: line.replacingOccurrences(of: "node_a", with: "node_b").replacingOccurrences(of: "node_b ssh", with: "node_c ssh")))
        #expect(try !g.sshVerifies(record.replacingOccurrences(of: "ran-t1", with: "ran-t2"), signature: signature, node: "node_a", allowed: line))

        // The node record names the key; its heartbeat on the node ref is signed too.
        let node = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(g.repo, "nodes/node_a.json").utf8)) as? [String: Any] ?? [:]
        #expect(node["public_key"] as? String == String(line.dropFirst("node_a ".count)))
        #expect(node["key_fingerprint"] as? String == fingerprint)
        let beat = try GridFixture.git(["--git-dir", g.repo, "show", "refs/dgrid/nodes/node_a:node.json"]).stdout
        let beatSignature = try GridFixture.git(["--git-dir", g.repo, "show", "refs/dgrid/nodes/node_a:node.json.sig"]).stdout
        #expect(try g.sshVerifies(beat, signature: beatSignature, node: "node_a", allowed: line))
        // Trust on first use (no allowed_workers here): the folding host pinned the node's key.
        let known = try String(contentsOfFile: g.home.path + "/trust/known_workers", encoding: .utf8)
        #expect(known.hasPrefix(line + " "), "\(known)")
    }

    @Test func forgedResultsAreRefusedAuditedDroppedAndTheTasksStillRun() throws {
        let g = try Grid()
        try g.submit(["seed"])
        #expect(try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once").status == 0)  // node_a's key pinned
        // Another host's node key, made by dgrid, revoked on this host; and a key of nobody's.
        let other = try GridFixture.workerHome()
        defer { try? FileManager.default.removeItem(atPath: other.path) }
        #expect(try other.dgrid("node", "init", "--node-id", "node_c").status == 0)
        let revoked = try String(contentsOfFile: other.path + "/node/id_ed25519.pub", encoding: .utf8)
        FileManager.default.createFile(atPath: g.home.path + "/trust/revoked_keys", contents: Data(revoked.utf8), attributes: [.posixPermissions: 0o600])
        try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", g.dir + "/mallory"])

        try g.submit(["f1", "f2", "f3", "f4"])
        try g.forgeResult("f1", node: "node_a", signWith: nil)                                   // unsigned
        try g.forgeResult("f2", node: "node_a", signWith: g.dir + "/mallory")                    // another key in node_a's name
        try g.forgeResult("f3", node: "node_a", signWith: g.home.path + "/node/id_ed25519", tamper: true)  // changed after signing
        try g.forgeResult("f4", node: "node_c", signWith: other.path + "/node/id_ed25519")      // a revoked key

        let fold = try g.home.dgrid("fold", "--repo", g.url)
        #expect(fold.status == 0, "\(fold.stderr)")
        #expect(fold.stdout.contains("refused 4 results"), "\(fold.stdout)")
        let files = try GridFixture.mainFiles(g.repo)
        let forgedFolded = files.filter { path in path.hasPrefix("tasks/completed/") && ["f1", "f2", "f3", "f4"].contains { path.contains("-\($0).json") } }
        #expect(forgedFolded.isEmpty, "\(files)")
        #expect(try GridFixture.refs(g.repo, "refs/dgrid/results").isEmpty, "forged results are dropped, so the tasks can run")
        let refused = try g.audit(g.home).filter { $0["event"] as? String == "result_refused" }
        let reasons = Dictionary(refused.map { ($0["task_id"] as? String ?? "", $0["reason"] as? String ?? "") }) { first, _ in first }
        #expect(reasons["f1"]?.contains("unsigned") == true, "\(reasons)")
        #expect(reasons["f2"]?.contains("known here by") == true, "\(reasons)")
        #expect(reasons["f3"]?.contains("does not match") == true, "\(reasons)")
        #expect(reasons["f4"]?.contains("revoked") == true, "\(reasons)")

        // Nothing forged ran or stuck: the tasks run for real, once each.
        #expect(try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once").status == 0)
        for id in ["f1", "f2", "f3", "f4"] {
            let record = try GridFixture.show(g.repo, "tasks/completed/node_a-\(id).json.log")
            #expect(record.contains("ran-\(id)") && !record.contains("forged"), "\(id): \(record)")
        }
    }

    @Test func aResultReplayedFromAnotherTaskAndANodeRecordAnnouncingAnothersKeyAreRefused() throws {
        let g = try Grid()
        try g.submit(["seed"])
        #expect(try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once").status == 0)
        // node_a's genuine, signed record of task seed, pushed as the result of task r1.
        let record = try GridFixture.show(g.repo, "tasks/completed/node_a-seed.json.log")
        let signature = try GridFixture.show(g.repo, "tasks/completed/node_a-seed.json.log.sig")
        try g.submit(["r1"])
        let work = try TempDir.make(prefix: "dgrid-replay").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        try Data(record.utf8).write(to: URL(fileURLWithPath: work + "/result.json"))
        try Data(signature.utf8).write(to: URL(fileURLWithPath: work + "/result.json.sig"))
        // And a heartbeat in node_m's name, signed by mallory's key, announcing node_a's key.
        try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", g.dir + "/mallory"])
        let (line, _) = try g.nodeLine(g.home, "node_a")
        let beat = #"{"node_id":"node_m","node_name":"m","status":"active","last_heartbeat":"2026-12-05T00:00:00Z","public_key":"\#(line.dropFirst("node_a ".count))"}"#
        let beatDir = try TempDir.make(prefix: "dgrid-beat").path
        defer { try? FileManager.default.removeItem(atPath: beatDir) }
        try Data(beat.utf8).write(to: URL(fileURLWithPath: beatDir + "/node.json"))
        try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", g.dir + "/mallory", "-n", "dgrid-result", beatDir + "/node.json"])
        for (dir, ref) in [(work, "refs/dgrid/results/r1"), (beatDir, "refs/dgrid/nodes/node_m")] {
            for args in [["init", "-q", dir], ["-C", dir, "add", "-A", "."],
                         ["-C", dir, "-c", "user.name=f", "-c", "user.email=f@f", "commit", "-q", "-m", "forged"],
                         ["-C", dir, "push", "-q", g.repo, "HEAD:" + ref]] {
                #expect(try GridFixture.git(args).status == 0, "\(args)")
            }
        }
        let fold = try g.home.dgrid("fold", "--repo", g.url)
        #expect(fold.status == 0 && fold.stdout.contains("refused 1 results"), "\(fold.stdout)\(fold.stderr)")
        let files = try GridFixture.mainFiles(g.repo)
        #expect(!files.contains { $0.contains("-r1.json") } && !files.contains("nodes/node_m.json"), "\(files)")
        let events = try g.audit(g.home)
        #expect(events.contains { $0["event"] as? String == "result_refused" && ($0["reason"] as? String ?? "").contains("a replay") }, "\(events)")
        #expect(events.contains { $0["event"] as? String == "heartbeat_refused" && ($0["reason"] as? String ?? "").contains("someone else's key") }, "\(events)")
    }

    @Test func anOversizedSignatureIsRefusedAsSuchAndTheFoldGoesOn() throws {
        let g = try Grid()
        try g.submit(["seed"])
        #expect(try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once").status == 0)
        try g.submit(["big"])
        try g.forgeResult("big", node: "node_a", signWith: nil, signature: [UInt8](repeating: 0x41, count: 1 << 20))
        let fold = try g.home.dgrid("fold", "--repo", g.url)
        #expect(fold.status == 0 && fold.stdout.contains("refused 1 results"), "\(fold.stdout)\(fold.stderr)")
        let reason = try g.audit(g.home).first { $0["event"] as? String == "result_refused" }?["reason"] as? String ?? ""
        #expect(reason.contains("the signature is refused") && reason.contains("over the limit"), "\(reason)")
        #expect(try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once").status == 0)
        #expect(try GridFixture.show(g.repo, "tasks/completed/node_a-big.json.log").contains("ran-big"))
    }

    @Test func aClaimPushedInAnotherNodesNameHoldsNoTask() throws {
        let g = try Grid()
        try g.submit(["c1"])
        // A held claim with a lease a year long and an attempt count that would end the task, unsigned, in node_x's name.
        let work = try TempDir.make(prefix: "dgrid-forge-claim").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let claim = #"{"task_id":"c1","node_id":"node_x","attempt":99,"claimed_at":"2026-12-05T00:00:00Z","lease_until":"2027-12-05T00:00:00Z","progress":null,"state":"held","previous_attempts":[]}"#
        try Data(claim.utf8).write(to: URL(fileURLWithPath: work + "/claim.json"))
        for args in [["init", "-q", work], ["-C", work, "add", "-A"],
                     ["-C", work, "-c", "user.name=f", "-c", "user.email=f@f", "commit", "-q", "-m", "forged claim"],
                     ["-C", work, "push", "-q", g.repo, "HEAD:refs/dgrid/claims/c1"]] {
            #expect(try GridFixture.git(args).status == 0, "\(args)")
        }
        let worker = try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let record = try GridFixture.show(g.repo, "tasks/completed/node_a-c1.json.log")
        #expect(record.contains("ran-c1"), "the forged claim did not hold the task: \(record)")
        let parsed = try JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any] ?? [:]
        #expect(parsed["attempt"] as? Int == 1, "the forged attempt count is no history: \(record)")
        #expect(!(try GridFixture.mainFiles(g.repo)).contains("tasks/in_progress/node_x-c1.json"))
    }

    @Test func reputationIsRecomputedFromSignedRecordsOnMainAndInTheArchive() throws {
        let g = try Grid()
        for (id, script, timeout) in [("bad", "exit 3", 20), ("slow", "sleep 10", 1)] {
            try GridFixture.taskFile(g.dir, id, script, timeout: timeout)
            #expect(try g.home.dgrid("submit", "--repo", g.url, g.dir + "/\(id).json").status == 0)
        }
        #expect(try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once").status == 0)
        Thread.sleep(forTimeInterval: 1.1)  // records say when they finished to the second: the two runs apart
        try g.submit(["ok1", "ok2"])
        #expect(try g.home.dgrid("worker", "--repo", g.url, "--node-id", "node_a", "--once").status == 0)
        let other = try GridFixture.workerHome()
        defer { try? FileManager.default.removeItem(atPath: other.path) }
        try g.submit(["b1"])
        #expect(try other.dgrid("worker", "--repo", g.url, "--node-id", "node_b", "--once").status == 0)
        // An unsigned record pushed onto main in node_a's name counts for nobody.
        let forged = g.dir + "/forged.log"
        try Data(#"{"task_id":"zz","node_id":"node_a","exit_code":0,"status":"completed","timestamp":"2027-01-01T00:00:00Z"}"#.utf8).write(to: URL(fileURLWithPath: forged))
        try GridFixture.push(g.repo, [(forged, "tasks/completed/node_a-zz.json.log")])

        func nodes(_ home: ImageCLITests.Home) throws -> [String: [String: Any]] {
            let report = try home.json("reputation", "--repo", g.url, "--json")
            #expect((report["derivation"] as? [String: String])?["error_rate"] != nil, "\(report)")
            #expect(report["records_unsigned"] as? Int == 1, "\(report)")
            return Dictionary(((report["nodes"] as? [[String: Any]]) ?? []).map { ($0["node_id"] as? String ?? "", $0) }) { first, _ in first }
        }
        for home in [g.home, other] {  // two hosts, each pinned both keys on first use: the same numbers
            let byNode = try nodes(home)
            let a = byNode["node_a"] ?? [:], b = byNode["node_b"] ?? [:]
            #expect(a["results_accepted"] as? Int == 4 && a["failures"] as? Int == 1 && a["timeouts"] as? Int == 1, "\(a)")
            #expect(a["consecutive_valid"] as? Int == 2 && a["error_rate"] as? Double == 0.5, "\(a)")
            #expect(b["results_accepted"] as? Int == 1 && b["consecutive_valid"] as? Int == 1 && b["error_rate"] as? Double == 0, "\(b)")
        }
        // Archived, the records are read from their bundles: the same figures.
        let archived = try g.home.dgrid("archive", "--repo", g.url, "--older-than", "0s")
        #expect(archived.status == 0, "\(archived.stdout)\(archived.stderr)")
        #expect(!(try GridFixture.mainFiles(g.repo)).contains("tasks/completed/node_a-ok1.json.log"))
        let a = try nodes(g.home)["node_a"] ?? [:]
        #expect(a["results_accepted"] as? Int == 4 && a["consecutive_valid"] as? Int == 2, "\(a)")
        let table = try g.home.dgrid("reputation", "--repo", g.url)
        #expect(table.status == 0 && table.stdout.contains("node_a") && table.stdout.contains("1 unsigned"), "\(table.stdout)")
    }

    @Test func underAllowedWorkersOnlyKeysListedForTheNodeCount() throws {
        let g = try Grid()
        #expect(try g.home.dgrid("node", "init", "--node-id", "node_a").status == 0)
        let (line, _) = try g.nodeLine(g.home, "node_a")
        // This host lists node_a's key only, for node_a only.
        FileManager.default.createFile(atPath: g.home.path + "/trust/allowed_workers", contents: Data((line + "\n").utf8),
                                       attributes: [.posixPermissions: 0o600])
        let other = try GridFixture.workerHome()
        defer { try? FileManager.default.removeItem(atPath: other.path) }
        #expect(try other.dgrid("node", "init", "--node-id", "node_b").status == 0)

        try g.submit(["a1", "b1", "a2"])
        try g.forgeResult("a1", node: "node_a", signWith: g.home.path + "/node/id_ed25519")  // node_a's own key: counts
        try g.forgeResult("b1", node: "node_b", signWith: other.path + "/node/id_ed25519")  // a real node, not listed here
        try g.forgeResult("a2", node: "node_b", signWith: g.home.path + "/node/id_ed25519")  // node_a's key in node_b's name
        let fold = try g.home.dgrid("fold", "--repo", g.url)
        #expect(fold.status == 0 && fold.stdout.contains("refused 2 results"), "\(fold.stdout)\(fold.stderr)")
        let files = try GridFixture.mainFiles(g.repo)
        #expect(files.contains("tasks/completed/node_a-a1.json.log.sig"), "\(files)")
        #expect(!files.contains { $0.contains("-b1.json") || $0.contains("node_b-a2") }, "\(files)")
        let reasons = try g.audit(g.home).filter { $0["event"] as? String == "result_refused" }.map { $0["reason"] as? String ?? "" }
        #expect(reasons.contains { $0.contains("allowed_workers does not accept") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("not for node node_b") }, "\(reasons)")
        #expect(!FileManager.default.fileExists(atPath: g.home.path + "/trust/known_workers"), "allowed_workers pins nothing")
    }
}
