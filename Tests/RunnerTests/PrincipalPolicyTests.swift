import Foundation
@testable import Runner
import Sandbox
import Testing
import TestSupport

/// `policy.toml`'s per-principal tables (docs/ARCHITECTURE.md §9): read strictly, each
/// principal over the defaults, and applied to a task by `TaskAdmission`.
@Suite(.unit)
struct PrincipalPolicyTests {
    static let policyText = """
        min_signers = 1

        [principal_defaults]
        max_memory = "1g"
        max_concurrent_tasks = 4

        [principals."alice@example.com"]
        images = ["dgrid/busybox:*", "registry.example/alice/*"]
        max_cpus = 2
        max_pids = 64
        max_timeout_seconds = 600
        max_tasks_per_hour = 100

        [principals."ops@example.com"]
        min_signers = 2

        [global]
        max_queue = 1000
        max_submissions_per_minute = 60
        max_concurrent = 16

        [[signers]]
        priority = "critical"
        min_signers = 2

        [[signers]]
        image = "registry.example/prod/*"
        min_signers = 3
        """

    @Test func principalsReadOverTheDefaults() throws {
        let policy = try TrustPolicy.parse(Self.policyText, source: "p")
        let alice = policy.limits(for: "alice@example.com")
        #expect(alice.maxMemoryBytes == 1 << 30 && alice.maxConcurrentTasks == 4, "inherited")
        #expect(alice.maxCPUs == 2 && alice.maxPids == 64 && alice.maxTimeoutSeconds == 600 && alice.maxTasksPerHour == 100)
        #expect(policy.limits(for: "someone@else").images == nil && policy.limits(for: nil).maxConcurrentTasks == 4)
        #expect(policy.global.maxQueue == 1000 && policy.global.maxSubmissionsPerMinute == 60 && policy.global.maxConcurrent == 16)
        #expect(policy.hasLedgerQuotas)
        #expect(try !TrustPolicy.parse("min_signers = 1\n", source: "p").hasLedgerQuotas)
    }

    @Test func signersNeededAreTheMostAnyRuleAsks() throws {
        let policy = try TrustPolicy.parse(Self.policyText, source: "p")
        #expect(policy.requiredSigners(priority: .normal, image: "dgrid/busybox:latest", principal: "alice@example.com") == 1)
        #expect(policy.requiredSigners(priority: .critical, image: "dgrid/busybox:latest", principal: "alice@example.com") == 2)
        #expect(policy.requiredSigners(priority: .low, image: "registry.example/prod/api@sha256:ab", principal: "alice@example.com") == 3)
        #expect(policy.requiredSigners(priority: .normal, image: "dgrid/busybox:latest", principal: "ops@example.com") == 2)
    }

    @Test func badTablesAreRefusedNamingTheKey() {
        for (text, reason) in [
            ("[principals.\"a\"]\nmax_concurent_tasks = 2", "unknown key \"max_concurent_tasks\""),
            ("[principals.\"a\"]\nmax_cpus = 0", "max_cpus: expected a number above 0"),
            ("[principals.\"a\"]\nmax_memory = \"lots\"", "max_memory"),
            ("[principals.\"a\"]\nimages = \"x\"", "images: expected an array of strings"),
            ("[principals]\na = 1", "expected a table"),
            ("[global]\nmax_queue = -1", "max_queue"),
            ("[global]\nmax_queues = 1", "unknown key \"max_queues\""),
            ("[[signers]]\nmin_signers = 2", "name a priority, an image, or both"),
            ("[[signers]]\npriority = \"urgent\"\nmin_signers = 2", "priority: expected one of critical, high, normal, low"),
            ("[[signers]]\npriority = \"high\"", "min_signers is required"),
        ] {
            do {
                _ = try TrustPolicy.parse(text, source: "policy.toml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".contains(reason) && "\(error)".contains("policy.toml"), "\(text): \(error)")
            }
        }
    }

    @Test func admissionRefusesImagesAndMaximaAndCapsWhatTheTaskLeavesOpen() throws {
        let policy = try TrustPolicy.parse(Self.policyText, source: "p")
        let admission = TaskAdmission(policy: policy, defaultImage: "dgrid/busybox:latest",
                                      defaults: TaskResources(cpus: 1, memoryBytes: 4 << 30, pids: 256))
        var task = TaskFile(taskID: "t", script: "true", timeoutSeconds: 60)
        let admitted = try admission.admit(task, principal: "alice@example.com")
        // Left to the worker: its defaults, held to alice's maxima.
        #expect(admitted.resources.memoryBytes == 1 << 30 && admitted.resources.pids == 64 && admitted.resources.cpus == 1)
        task.image = "docker.io/library/alpine:3"
        #expect(throws: AdmissionRefusal.image(who: "principal \"alice@example.com\"", image: "docker.io/library/alpine:3",
                                               allowed: ["dgrid/busybox:*", "registry.example/alice/*"])) {
            _ = try admission.admit(task, principal: "alice@example.com")
        }
        task.image = nil
        task.resources.cpus = 3
        #expect(throws: AdmissionRefusal.self) { _ = try admission.admit(task, principal: "alice@example.com") }
        task.resources.cpus = nil
        task.timeoutSeconds = 601
        do {
            _ = try admission.admit(task, principal: "alice@example.com")
            Issue.record("a timeout over the maximum was admitted")
        } catch {
            #expect("\(error)" == "asks for timeout_seconds 601; principal \"alice@example.com\" may use at most 600")
        }
        // Unsigned tasks run under the defaults.
        task.timeoutSeconds = 10
        task.resources.memoryBytes = 2 << 30
        do {
            _ = try admission.admit(task, principal: nil)
            Issue.record("memory over the default maximum was admitted")
        } catch {
            #expect("\(error)".contains("an unsigned task may use at most 1073741824 bytes"), "\(error)")
        }
    }

    /// The host's file over a fleet's: key by key within tables, the host's value wherever it gives one.
    @Test func theHostsFileWinsKeyByKeyOverAFleetPolicy() throws {
        let fleet = try TrustPolicy.table("""
            min_signers = 2
            secret_env = ["DB_PASSWORD"]
            [principals."alice@example.com"]
            max_cpus = 4
            max_tasks_per_hour = 10
            [principals."bob@example.com"]
            max_pids = 8
            [global]
            max_queue = 100
            max_concurrent = 5
            """, source: "fleet")
        let host = try TrustPolicy.table("""
            [principals."alice@example.com"]
            max_cpus = 1
            [global]
            max_concurrent = 50
            """, source: "host")
        let merged = try TrustPolicy.parse(table: TrustPolicy.overlay(host, onto: fleet), source: "merged")
        #expect(merged.minSigners == 2 && merged.secretEnv == ["DB_PASSWORD"])
        let alice = merged.limits(for: "alice@example.com")
        #expect(alice.maxCPUs == 1 && alice.maxTasksPerHour == 10)
        #expect(merged.limits(for: "bob@example.com").maxPids == 8)
        #expect(merged.global.maxConcurrent == 50 && merged.global.maxQueue == 100)
    }

    /// A task's egress: its principal's destinations plus every `[[egress]]` rule its image matches.
    @Test func egressIsThePrincipalsAndTheImagesDestinations() throws {
        let policy = try TrustPolicy.parse("""
            [principals."alice@example.com"]
            egress = ["10.77.1.2:8080/tcp"]
            resolver = "10.77.1.53"
            [[egress]]
            image = "registry.example/fetchers/*"
            allow = ["10.77.0.0/16:*/udp"]
            """, source: "p")
        let alice = try #require(policy.egressGrant(principal: "alice@example.com", image: "dgrid/busybox:latest"))
        #expect(alice.rules.map(\.description) == ["10.77.1.2:8080/tcp"] && alice.resolver.map { EgressRule.dotted($0) } == "10.77.1.53")
        #expect(policy.egressGrant(principal: "bob@example.com", image: "dgrid/busybox:latest") == nil)
        let fetcher = try #require(policy.egressGrant(principal: "bob@example.com", image: "registry.example/fetchers/web:1"))
        #expect(fetcher.rules.map(\.description) == ["10.77.0.0/16:*/udp"])
        #expect(try EgressRule(parsing: "10.77.1.9/24:443/tcp").description == "10.77.1.0/24:443/tcp", "the network, not the host")
        for bad in ["host.example:443/tcp", "10.0.0.1:0/tcp", "10.0.0.01:80/tcp", "10.0.0.1:80/sctp", "10.0.0.1:80"] {
            #expect(throws: EgressRuleError.self, "\(bad)") { _ = try EgressRule(parsing: bad) }
        }
    }
}
