import Foundation
import Testing
import TestSupport

/// Quorum execution (docs/ARCHITECTURE.md §11) through the built binaries and a
/// real repository: each replica of a quorum task runs on a distinct node and is
/// published as that node's signed vote; the fold decides at agreement, keeps
/// every vote on main, and `dgrid reputation` counts the dissenters as outvoted.
/// The liar is a test program, as the threat model has it: a node with a real key
/// that claims replicas and publishes well-formed, correctly signed, wrong votes
/// through the ledger with git and ssh-keygen — no worker code of ours lies.
@Suite(.system, .serialized)
struct GridQuorumCLITests {
    final class Grid {
        let dir: String
        let repo: String
        /// The folding host, and one host per honest node (each its own node key).
        let home: ImageCLITests.Home
        var hosts: [String: ImageCLITests.Home] = [:]
        /// The liar's host: `dgrid node init` made its key; it runs nothing.
        let liarHome: ImageCLITests.Home
        var url: String { "file://" + repo }

        init(honest nodes: [String]) throws {
            dir = try TempDir.make(prefix: "dgrid-quorum").path
            repo = try GridFixture.bareRepository()
            home = try GridFixture.workerHome()
            liarHome = try ImageCLITests.Home(requireSignatures: false)
            #expect(try home.dgrid("init", "--repo", "file://" + repo).status == 0)
            for node in nodes { hosts[node] = try GridFixture.workerHome() }
            #expect(try liarHome.dgrid("node", "init", "--node-id", "liar").status == 0)
        }

        deinit {
            for path in [dir, repo, home.path, liarHome.path] + hosts.values.map(\.path) { try? FileManager.default.removeItem(atPath: path) }
        }

        func submit(_ id: String, quorum: String, script: String? = nil) throws {
            try GridFixture.taskFile(dir, id, script ?? "echo answer-\(id)", extra: ",\"quorum\":\(quorum)")
            let r = try home.dgrid("submit", "--repo", url, dir + "/\(id).json")
            #expect(r.status == 0, "\(r.stderr)")
        }

        @discardableResult
        func work(_ node: String) throws -> ProcessResult {
            let r = try hosts[node]!.dgrid("worker", "--repo", url, "--node-id", node, "--once")
            #expect(r.status == 0, "\(node): \(r.stderr)")
            return r
        }

        /// What a lying node does through the ledger: claims replica `replica` of `task` in
        /// `node`'s name (unless `claim` is false) and publishes a vote on top of it saying `stdout`,
        /// both signed with the liar host's key (`signClaimAs`: the node the claim names, when another).
        func lie(_ task: String, replica: Int, stdout: String = "wrong\n", node: String = "liar", claim: Bool = true,
                 key given: String? = nil) throws {
            let key = given ?? liarHome.path + "/node/id_ed25519"
            let lease = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
            var parent: String?
            if claim {
                let claimRecord = #"{"task_id":"\#(task)","node_id":"\#(node)","attempt":1,"claimed_at":"2026-12-05T00:00:00Z","lease_until":"\#(lease)","state":"held","previous_attempts":[],"replica":\#(replica)}"#
                parent = try commit(["claim.json": claimRecord], key: key, ref: "refs/dgrid/claims/\(task)/\(replica)", parent: nil)
            }
            let escaped = stdout.replacingOccurrences(of: "\n", with: "\\n")
            let vote = #"{"task_id":"\#(task)","node_id":"\#(node)","exit_code":0,"stdout":"\#(escaped)","stderr":"","timestamp":"2026-12-05T00:00:01Z","finished_at":"2026-12-05T00:00:01Z","status":"completed","attempt":1,"replica":\#(replica)}"#
            _ = try commit(["result.json": vote, "task.json": try String(contentsOfFile: dir + "/\(task).json", encoding: .utf8)],
                           key: key, ref: "refs/dgrid/results/\(task)/\(replica)", parent: parent)
        }

        /// A commit of `files` (each `.json` record signed, as a node signs it) pushed to `ref` as a new ref.
        private func commit(_ files: [String: String], key: String, ref: String, parent: String?) throws -> String {
            let work = try TempDir.make(prefix: "dgrid-liar").path
            defer { try? FileManager.default.removeItem(atPath: work) }
            for args in [["init", "-q", work]] { #expect(try GridFixture.git(args).status == 0) }
            if let parent {
                #expect(try GridFixture.git(["-C", work, "fetch", "-q", repo, parent]).status == 0)
            }
            for (name, text) in files {
                try Data(text.utf8).write(to: URL(fileURLWithPath: work + "/" + name))
                if name != "task.json" { try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", key, "-n", "dgrid-result", work + "/" + name]) }
            }
            #expect(try GridFixture.git(["-C", work, "add", "-A"]).status == 0)
            let tree = try GridFixture.git(["-C", work, "write-tree"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let commit = try GridFixture.git(["-C", work, "-c", "user.name=l", "-c", "user.email=l@l", "commit-tree", tree, "-m", "liar"]
                                             + (parent.map { ["-p", $0] } ?? [])).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let pushed = try GridFixture.git(["-C", work, "push", "-q", repo, "\(commit):\(ref)"])
            #expect(pushed.status == 0, "\(ref): \(pushed.stderr)")
            return commit
        }

        /// Adds `[reputation]` to `host`'s policy.toml (the folding host's by default).
        func reputationPolicy(_ lines: String, on host: ImageCLITests.Home? = nil) throws {
            let path = (host ?? home).path + "/trust/policy.toml"
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            try Data((text + "[reputation]\n" + lines + "\n").utf8).write(to: URL(fileURLWithPath: path))
        }

        /// A plain claim of `task` by the liar, signed, with a lease of an hour.
        func liarClaims(_ task: String) throws {
            let lease = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
            let record = #"{"task_id":"\#(task)","node_id":"liar","attempt":1,"claimed_at":"2026-12-05T00:00:00Z","lease_until":"\#(lease)","state":"held","previous_attempts":[]}"#
            _ = try commit(["claim.json": record], key: liarHome.path + "/node/id_ed25519", ref: "refs/dgrid/claims/\(task)", parent: nil)
        }

        /// Who ran each finished task, by the records on main.
        func ranBy(_ task: String) throws -> [String] {
            try GridFixture.mainFiles(repo).filter { $0.hasSuffix("-\(task).json.log") && !$0.hasPrefix("tasks/votes/") }
                .map { ($0 as NSString).lastPathComponent.components(separatedBy: "-").first ?? "" }
        }

        func fold() throws -> String {
            let r = try home.dgrid("fold", "--repo", url)
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout
        }

        /// The audit log of `host` (the folding host's by default).
        func audit(_ host: ImageCLITests.Home? = nil) throws -> [[String: Any]] {
            let text = (try? String(contentsOfFile: (host ?? home).path + "/audit.log", encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        func reputation() throws -> [String: [String: Any]] {
            let report = try home.json("reputation", "--repo", url, "--json")
            return Dictionary(((report["nodes"] as? [[String: Any]]) ?? []).map { ($0["node_id"] as? String ?? "", $0) }) { first, _ in first }
        }
    }

    @Test func theHonestMajorityDecidesEveryQuorumTaskAndTheLiarIsOutvoted() throws {
        let g = try Grid(honest: ["node_a", "node_b"])
        let tasks = ["q1", "q2", "q3"]
        for id in tasks { try g.submit(id, quorum: #"{"replicas":3,"agree":2}"#) }
        // node_a runs replica 1 of each; the liar takes replica 2 of each and says otherwise.
        try g.work("node_a")
        for id in tasks { try g.lie(id, replica: 2) }
        let early = try g.fold()
        let before = try GridFixture.mainFiles(g.repo)
        #expect(before.allSatisfy { !$0.hasPrefix("tasks/completed/") || $0.hasSuffix(".gitkeep") }, "1 to 1: no task decided yet: \(early) \(before)")
        // A third replica is wanted (1 against 1): node_b runs it, and its fold decides.
        try g.work("node_b")
        _ = try g.fold()
        let files = try GridFixture.mainFiles(g.repo)
        for id in tasks {
            // The canonical result is the honest one, folded once, from the lowest agreeing replica.
            let record = try GridFixture.show(g.repo, "tasks/completed/node_a-\(id).json.log")
            #expect(record.contains("answer-\(id)") && !record.contains("wrong"), "\(id): \(record)")
            #expect(!files.contains { $0.hasPrefix("tasks/completed/") && $0.contains("liar") })
            #expect(!files.contains { $0.hasPrefix("tasks/queue/") && $0.contains(id) })
            // Every vote kept, signed; the tally names the liar as the dissenter.
            for replica in 1...3 {
                #expect(files.contains("tasks/votes/\(id)/\(replica).json") && files.contains("tasks/votes/\(id)/\(replica).json.sig"), "\(id)/\(replica)")
            }
            let tally = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(g.repo, "tasks/votes/\(id)/quorum.json").utf8)) as? [String: Any] ?? [:]
            #expect(tally["dissenters"] as? [String] == ["liar"] && tally["canonical_replica"] as? Int == 1, "\(tally)")
        }
        // Nothing of the runs is left on the grid.
        #expect(try GridFixture.refs(g.repo, "refs/dgrid/claims").isEmpty && GridFixture.refs(g.repo, "refs/dgrid/results").isEmpty)
        // node_b's worker folded after its runs (a draining worker folds): its host audited the dissent.
        let events = try g.audit(g.hosts["node_b"])
        let outvoted = events.filter { $0["event"] as? String == "result_outvoted" }
        #expect(Set(outvoted.compactMap { $0["task_id"] as? String }) == Set(tasks) && outvoted.allSatisfy { $0["node_id"] as? String == "liar" }, "\(events)")
        // The liar's reputation drops; the honest nodes' counts hold. Recomputed from the signed votes.
        let byNode = try g.reputation()
        let liar = byNode["liar"] ?? [:], a = byNode["node_a"] ?? [:], b = byNode["node_b"] ?? [:]
        #expect(liar["results_outvoted"] as? Int == 3 && liar["results_accepted"] as? Int == 0 && liar["consecutive_valid"] as? Int == 0
                && liar["error_rate"] as? Double == 1, "\(liar)")
        #expect(a["results_accepted"] as? Int == 3 && a["results_outvoted"] as? Int == 0 && b["results_accepted"] as? Int == 3, "\(a) \(b)")
        // Archived, the votes go with their tasks and the same figures are recounted from the bundles.
        let archived = try g.home.dgrid("archive", "--repo", g.url, "--older-than", "0s")
        #expect(archived.status == 0, "\(archived.stdout)\(archived.stderr)")
        #expect(!(try GridFixture.mainFiles(g.repo)).contains { $0.hasPrefix("tasks/votes/") })
        let after = try g.reputation()
        #expect(after["liar"]?["results_outvoted"] as? Int == 3 && after["node_a"]?["results_accepted"] as? Int == 3
                && after["node_b"]?["results_accepted"] as? Int == 3, "\(after)")
    }

    @Test func withDistinctOperatorsTwoNodesOfOneKeyCastOneVote() throws {
        let g = try Grid(honest: ["node_a"])
        for host in [g.home, g.hosts["node_a"]!] { try g.reputationPolicy(#"quorum_distinct = "operators""#, on: host) }
        try g.submit("d1", quorum: #"{"replicas":2,"agree":2}"#)
        try g.submit("d2", quorum: #"{"replicas":2,"agree":2}"#)
        try g.work("node_a")
        // One host, one key, two node ids: one operator. A worker of that host does not run what
        // its fold would refuse — the twin claims neither task's second replica...
        let twin = try g.hosts["node_a"]!.dgrid("worker", "--repo", g.url, "--node-id", "node_a2", "--once")
        #expect(twin.status == 0, "\(twin.stderr)")
        let refs = try GridFixture.git(["--git-dir", g.repo, "for-each-ref", "--format=%(refname)", "refs/dgrid/claims/"]).stdout
        #expect(refs.contains("refs/dgrid/claims/d1/1") && !refs.contains("/2"), "\(refs)")
        // ...and a vote made anyway with that key in another node's name (an agreeing one) is refused by the fold.
        try g.lie("d1", replica: 2, stdout: "answer-d1\n", node: "node_a2", key: g.hosts["node_a"]!.path + "/node/id_ed25519")
        let out = try g.fold()
        #expect(try g.ranBy("d1").isEmpty, "\(out)")
        #expect(try g.audit().contains { $0["event"] as? String == "result_refused" && ($0["reason"] as? String ?? "").contains("distinct operators") })
    }

    @Test func votesOutsideTheRulesAreRefusedAndNothingIsDecidedByThem() throws {
        let g = try Grid(honest: ["node_a"])
        try g.submit("v1", quorum: #"{"replicas":2,"agree":2}"#)
        try g.submit("v2", quorum: #"{"replicas":2,"agree":2}"#)
        try g.work("node_a")  // replica 1 of v1 and of v2
        try g.submit("plain", quorum: "1")
        // A vote for a replica the liar never claimed (its claim names node_a's replica 1... none at 2: no claim at all).
        try g.lie("v1", replica: 2, stdout: "answer-v1\n", claim: false)
        // Two replicas of one task by one node: both claimed and voted, agreeing with each other.
        try g.lie("v2", replica: 2, stdout: "same\n")
        try g.lie("v2", replica: 3, stdout: "same\n")
        // A vote on a task that is run once.
        try g.lie("plain", replica: 1, stdout: "answer-plain\n", claim: false)
        let out = try g.fold()
        #expect(out.contains("refused 3 results"), "\(out)")
        let reasons = try g.audit().filter { $0["event"] as? String == "result_refused" }.map { $0["reason"] as? String ?? "" }
        #expect(reasons.contains { $0.contains("never claimed") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("a second replica of task v2 by node liar") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("not a quorum task") }, "\(reasons)")
        let files = try GridFixture.mainFiles(g.repo)
        #expect(!files.contains { $0.hasPrefix("tasks/completed/") && ($0.contains("-v1.json") || $0.contains("-v2.json")) }, "\(files)")
        // The refused votes are gone; the honest vote and the liar's first replica of v2 stay for the fold to come.
        let left = try GridFixture.refs(g.repo, "refs/dgrid/results")
        #expect(Set(left) == ["refs/dgrid/results/v1/1", "refs/dgrid/results/v2/1", "refs/dgrid/results/v2/2"], "\(left)")
    }

    @Test func withoutAgreementWithinMaxReplicasTheTaskFailsWithEveryVoteShown() throws {
        let g = try Grid(honest: ["node_a"])
        try g.submit("n1", quorum: #"{"replicas":2,"agree":2,"max_replicas":2}"#)
        try g.work("node_a")
        try g.lie("n1", replica: 2)
        let out = try g.fold()
        #expect(out.contains("folded 1 finished"), "\(out)")
        let failed = try GridFixture.mainFiles(g.repo).filter { $0.hasPrefix("tasks/failed/") && $0.hasSuffix("-n1.json.log") }
        #expect(failed.count == 1, "\(failed)")
        let record = try GridFixture.show(g.repo, failed[0])
        #expect(record.contains("no consensus") && record.contains("\"consensus\": false"), "\(record)")
        let tally = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(g.repo, "tasks/votes/n1/quorum.json").utf8)) as? [String: Any] ?? [:]
        #expect(tally["outcome"] as? String == "no_consensus" && (tally["votes"] as? [[String: Any]])?.count == 2, "\(tally)")
        // No node is charged with the folder's statement, nor outvoted by a vote that decided nothing.
        let byNode = try g.reputation()
        #expect(byNode.values.allSatisfy { $0["results_outvoted"] as? Int == 0 && $0["failures"] as? Int == 0 }, "\(byNode)")
    }

    @Test func aNewNodeServesItsProbationOnOrdinaryTasksBeforeCriticalOnes() throws {
        let g = try Grid(honest: ["node_n"])
        try g.reputationPolicy("min_consecutive_valid = 2", on: g.hosts["node_n"])
        try g.reputationPolicy("min_consecutive_valid = 2")
        try GridFixture.taskFile(g.dir, "crit", "echo critical", extra: ",\"priority\":\"critical\"")
        #expect(try g.home.dgrid("submit", "--repo", g.url, g.dir + "/crit.json").status == 0)
        try GridFixture.taskFile(g.dir, "n1", "echo one")
        #expect(try g.home.dgrid("submit", "--repo", g.url, g.dir + "/n1.json").status == 0)
        // One valid result is not two: the critical task waits; the ordinary one runs.
        try g.work("node_n")
        #expect(try g.ranBy("n1") == ["node_n"] && g.ranBy("crit").isEmpty)
        #expect(try GridFixture.mainFiles(g.repo).contains { $0.hasPrefix("tasks/queue/") && $0.hasSuffix("/crit.json") })
        // A node on probation that claims it anyway (the liar, no results at all) holds nothing for this host:
        // its claim is refused by the fold, audited, and dropped.
        try g.liarClaims("crit")
        let out = try g.fold()
        #expect(try GridFixture.refs(g.repo, "refs/dgrid/claims").isEmpty, "\(out)")
        #expect(try g.audit().contains { $0["event"] as? String == "claim_refused" && ($0["reason"] as? String ?? "").contains("consecutive valid results") })
        // Its probation served (two in a row), node_n takes the critical task.
        try GridFixture.taskFile(g.dir, "n2", "echo two")
        #expect(try g.home.dgrid("submit", "--repo", g.url, g.dir + "/n2.json").status == 0)
        try g.work("node_n")
        #expect(try g.ranBy("n2") == ["node_n"] && g.ranBy("crit") == ["node_n"])
    }

    @Test func aNodeOutvotedTooOftenIsRefusedFurtherClaimsAndVotes() throws {
        let g = try Grid(honest: ["node_a", "node_b"])
        for host in [g.home, g.hosts["node_a"]!, g.hosts["node_b"]!] { try g.reputationPolicy("max_outvoted = 2", on: host) }
        for id in ["o1", "o2"] { try g.submit(id, quorum: #"{"replicas":3,"agree":2}"#) }
        try g.work("node_a")
        for id in ["o1", "o2"] { try g.lie(id, replica: 2) }
        try g.work("node_b")  // decides both: the liar outvoted twice
        _ = try g.fold()
        #expect(try g.reputation()["liar"]?["results_outvoted"] as? Int == 2)
        // Its next claim, signed and with an hour's lease, binds nobody here: node_a takes the task at once.
        try g.submit("later", quorum: "1")
        try g.liarClaims("later")
        try g.work("node_a")
        #expect(try g.ranBy("later") == ["node_a"])
        #expect(try g.audit(g.hosts["node_a"]).contains {
            $0["event"] as? String == "claim_refused" && ($0["reason"] as? String ?? "").contains("outvoted 2 times")
        })
        // And its vote on a quorum task counts for nothing.
        try g.submit("o3", quorum: #"{"replicas":2,"agree":2}"#)
        try g.work("node_a")
        try g.lie("o3", replica: 2, stdout: "answer-o3\n")
        _ = try g.fold()
        #expect(try g.ranBy("o3").isEmpty, "the barred node's agreeing vote decides nothing")
        #expect(try g.audit().contains { $0["event"] as? String == "result_refused" && ($0["reason"] as? String ?? "").contains("does not count") })
    }

    @Test func anAdaptiveTaskRunsOnceOnAProvenNodeAndTwiceOnAnUnprovenOne() throws {
        let g = try Grid(honest: ["veteran", "newcomer"])
        for host in [g.home] + Array(g.hosts.values) { try g.reputationPolicy("adaptive_consecutive_valid = 2", on: host) }
        // The veteran earns its record: two clean results.
        for id in ["w1", "w2"] {
            try GridFixture.taskFile(g.dir, id, "echo \(id)")
            #expect(try g.home.dgrid("submit", "--repo", g.url, g.dir + "/\(id).json").status == 0)
        }
        try g.work("veteran")
        try g.submit("adapt1", quorum: #""adaptive""#)
        try g.work("veteran")
        // One run by a proven node decides it.
        #expect(try g.ranBy("adapt1") == ["veteran"])
        var files = try GridFixture.mainFiles(g.repo)
        #expect(files.contains("tasks/votes/adapt1/1.json") && !files.contains("tasks/votes/adapt1/2.json"), "\(files)")
        // The newcomer's run alone decides nothing: a second run, on another node, must agree.
        try g.submit("adapt2", quorum: #""adaptive""#)
        try g.work("newcomer")
        #expect(try g.ranBy("adapt2").isEmpty)
        try g.work("veteran")
        #expect(try g.ranBy("adapt2") == ["newcomer"], "decided by both, canonical the lowest replica")
        files = try GridFixture.mainFiles(g.repo)
        #expect(files.contains("tasks/votes/adapt2/1.json") && files.contains("tasks/votes/adapt2/2.json"), "\(files)")
    }
}
