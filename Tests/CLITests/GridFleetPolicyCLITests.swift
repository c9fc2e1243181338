import Foundation
import Testing
import TestSupport

/// A fleet-wide policy on main (docs/ARCHITECTURE.md §9): signed for `dgrid-policy` by
/// a key the host trusts for it, it applies beneath the host's own file, which
/// wins; one that is unsigned by a trusted key, for another grid, a rollback,
/// or that turns signatures off is refused, audited, and the host's policy stays.
@Suite(.system, .serialized)
struct GridFleetPolicyCLITests {
    @Test func aSignedFleetPolicyAppliesBeneathTheHostsOwn() throws {
        let keys = try GridQuotaCLITests.Principals()
        let home = try keys.home(policy: "")
        // carol signs policies only; alice signs tasks.
        let alice = try String(contentsOfFile: keys.key("alice") + ".pub", encoding: .utf8)
        let carol = try String(contentsOfFile: keys.key("carol") + ".pub", encoding: .utf8)
        let bob = try String(contentsOfFile: keys.key("bob") + ".pub", encoding: .utf8)
        try ("alice@example.com namespaces=\"dgrid-task\" \(alice)ops@example.com namespaces=\"dgrid-policy\" \(carol)"
             + "bob@example.com namespaces=\"dgrid-task\" \(bob)").write(toFile: home.path + "/trust/allowed_signers", atomically: true, encoding: .utf8)
        chmod(home.path + "/trust/allowed_signers", 0o644)
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let grid = try #require(try GridFixture.status(home, url)["grid_id"] as? String)
        let dir = try TempDir.make(prefix: "dgrid-fleet").path

        /// Pushes a fleet policy signed by `signer` (nil: unsigned).
        func publish(_ body: String, signer: String?, grid named: String? = nil, serial: Int) throws {
            let file = dir + "/policy-\(UUID().uuidString.prefix(6)).toml"
            try "grid = \"\(named ?? grid)\"\nserial = \(serial)\n\(body)".write(toFile: file, atomically: true, encoding: .utf8)
            var files = [(file, ".dgrid/policy.toml")]
            if let signer {
                try Shell.check(["ssh-keygen", "-Y", "sign", "-q", "-f", keys.key(signer), "-n", "dgrid-policy", file])
                files.append((file + ".sig", ".dgrid/policy.toml.sig"))
            } else {
                files.append(("", ".dgrid/policy.toml.sig"))
            }
            try GridFixture.push(repo, files)
        }
        /// Submits a task of alice's with `timeout`; runs one worker; the task's final directory.
        var round = 0
        func run(timeout: Int) throws -> String {
            round += 1
            let id = "t\(round)"
            // Pushed by a writer, past submit's own check of the policy.
            try GridFixture.taskFile(dir, id, "echo ran", timeout: timeout, extra: ",\"grid\":\"\(grid)\"")
            #expect(try home.dgrid("sign", "--key", keys.key("alice"), dir + "/\(id).json").status == 0)
            try GridFixture.push(repo, [(dir + "/\(id).json", "tasks/queue/\(id).json"), (dir + "/\(id).json.sig", "tasks/queue/\(id).json.sig")])
            let worker = try home.dgrid("worker", "--repo", url, "--node-id", "node_f", "--once")
            #expect(worker.status == 0, "\(worker.stderr)")
            let files = try GridFixture.mainFiles(repo)
            if files.contains("tasks/completed/node_f-\(id).json") { return "completed" }
            if files.contains("tasks/rejected/\(id).json") {
                let record = try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, "tasks/rejected/\(id).json.log").utf8)) as? [String: Any]
                return "rejected: " + (record?["stderr"] as? String ?? "")
            }
            return "neither: \(files)"
        }
        func lastAudit(_ kind: String) throws -> [String: Any]? {
            try GridQuotaCLITests.events(home).last { $0["event"] as? String == kind }
        }

        // Signed by the policy key: alice's timeout is held to 10 s.
        try publish("[principals.\"alice@example.com\"]\nmax_timeout_seconds = 10\n", signer: "carol", serial: 2)
        let held = try run(timeout: 20)
        #expect(held.contains("may use at most 10"), "\(held)")
        #expect((try lastAudit("policy_applied"))?["reason"] as? String == ".dgrid/policy.toml serial 2")
        // `dgrid submit` applies it up front, in the same words.
        try GridFixture.taskFile(dir, "early", "echo ran", timeout: 20)
        let early = try home.dgrid("submit", "--repo", url, "--sign", "--key", keys.key("alice"), dir + "/early.json")
        #expect(early.status != 0 && early.stderr.contains("may use at most 10"), "\(early.stderr)")

        // The host's own file wins where both speak.
        try keys.setPolicy("[principals.\"alice@example.com\"]\nmax_timeout_seconds = 30\n", in: home)
        #expect(try run(timeout: 20) == "completed")
        try keys.setPolicy("", in: home)

        // Refused, each with its reason; the host's own (empty) policy stays in force, so the task runs.
        let refusals: [(String, () throws -> Void)] = [
            ("not allowed to sign for namespace dgrid-policy", { try publish("[principals.\"alice@example.com\"]\nmax_timeout_seconds = 10\n", signer: "alice", serial: 3) }),
            ("a key not in this host's allowed_signers", { try publish("[principals.\"alice@example.com\"]\nmax_timeout_seconds = 10\n", signer: "mallory-less", serial: 3) }),
            ("is not signed", { try publish("[principals.\"alice@example.com\"]\nmax_timeout_seconds = 10\n", signer: nil, serial: 6) }),
            ("a rollback", { try publish("[principals.\"alice@example.com\"]\nmax_timeout_seconds = 10\n", signer: "carol", serial: 1) }),
            ("a replay from another grid", { try publish("[principals.\"alice@example.com\"]\nmax_timeout_seconds = 10\n", signer: "carol", grid: "g-ffffffffffffffffffffffffffffffff", serial: 4) }),
            ("may not set require_signatures", { try publish("require_signatures = false\n", signer: "carol", serial: 5) }),
        ]
        try Shell.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "x", "-f", keys.key("mallory-less")])
        for (reason, push) in refusals {
            try push()
            let outcome = try run(timeout: 20)
            #expect(outcome == "completed", "\(reason): \(outcome)")
            let refused = try lastAudit("policy_refused")
            #expect((refused?["reason"] as? String ?? "").contains(reason), "\(reason): \(refused ?? [:])")
        }
    }
}
