import Testing
@testable import Runner
import Trust
import TestSupport

/// The counting rules of quorum tasks (docs/ARCHITECTURE.md §11), pure: which
/// votes agree, when a task is decided, how many runs are still wanted, when
/// there is no consensus, and how an adaptive task is decided by a proven node.
@Suite(.unit) struct QuorumTallyTests {
    static let commit = GitOID(hex: String(repeating: "c", count: 40))!

    static func vote(_ replica: Int, _ node: String, stdout: String, exit: Int32 = 0, timedOut: Bool = false) -> QuorumTally.Vote {
        var record = ResultRecord(taskID: "t", nodeID: node, exitCode: exit, stdout: stdout, timedOut: timedOut)
        record.replica = replica
        return QuorumTally.Vote(replica: replica, record: record, bytes: record.json(), signature: nil, commit: commit)
    }

    static func quorum(_ replicas: Int, _ agree: Int, max: Int? = nil, compare: Set<TaskQuorum.Field> = Set(TaskQuorum.Field.allCases)) -> TaskQuorum {
        TaskQuorum(replicas: replicas, agree: agree, maxReplicas: max, compare: compare)!
    }

    @Test func theAgreeingMajorityDecidesAndItsLowestReplicaIsCanonical() {
        let q = Self.quorum(3, 2)
        let split = QuorumTally(votes: [Self.vote(1, "a", stdout: "42"), Self.vote(2, "liar", stdout: "41")], quorum: q)
        guard case .open = split.verdict else { Issue.record("1 to 1 decides nothing: \(split.verdict)"); return }
        #expect(split.runsWanted == 3)
        let decided = QuorumTally(votes: [Self.vote(3, "b", stdout: "42"), Self.vote(1, "a", stdout: "42"), Self.vote(2, "liar", stdout: "41")], quorum: q)
        guard case .decided(let canonical, let agreeing, let dissenting) = decided.verdict else { Issue.record("\(decided.verdict)"); return }
        #expect(canonical.replica == 1 && agreeing.map(\.replica) == [1, 3] && dissenting.map(\.record.nodeID) == ["liar"])
        #expect(decided.runsWanted == 3, "decided: no more runs than the votes")
    }

    @Test func disagreementAsksForMoreRunsUpToTheMaximumThenEndsWithoutConsensus() {
        let q = Self.quorum(2, 2, max: 3)
        let two = QuorumTally(votes: [Self.vote(1, "a", stdout: "x"), Self.vote(2, "b", stdout: "y")], quorum: q)
        guard case .open = two.verdict else { Issue.record("\(two.verdict)"); return }
        #expect(two.runsWanted == 3)
        let three = QuorumTally(votes: [Self.vote(1, "a", stdout: "x"), Self.vote(2, "b", stdout: "y"), Self.vote(3, "c", stdout: "z")], quorum: q)
        guard case .noConsensus = three.verdict else { Issue.record("\(three.verdict)"); return }
        // Agreement out of reach before every run is spent: no consensus at once (1 + 0 left < 2).
        let early = QuorumTally(votes: [Self.vote(1, "a", stdout: "x"), Self.vote(2, "b", stdout: "y")], quorum: Self.quorum(2, 2, max: 2))
        guard case .noConsensus = early.verdict else { Issue.record("\(early.verdict)"); return }
    }

    @Test func votesAgreeOnWhatTheTaskComparesAndAlwaysOnTheStatus() {
        let exitOnly = Self.quorum(2, 2, compare: [.exitCode])
        let same = QuorumTally(votes: [Self.vote(1, "a", stdout: "x"), Self.vote(2, "b", stdout: "y")], quorum: exitOnly)
        guard case .decided = same.verdict else { Issue.record("stdout not compared: \(same.verdict)"); return }
        let killed = QuorumTally(votes: [Self.vote(1, "a", stdout: "x"), Self.vote(2, "b", stdout: "x", timedOut: true)], quorum: exitOnly)
        guard case .open = killed.verdict else { Issue.record("a timed-out run never agrees with a finished one: \(killed.verdict)"); return }
        let exits = QuorumTally(votes: [Self.vote(1, "a", stdout: "x", exit: 1), Self.vote(2, "b", stdout: "x", exit: 2)], quorum: Self.quorum(2, 2))
        guard case .open = exits.verdict else { Issue.record("\(exits.verdict)"); return }
    }

    @Test func anAdaptiveTaskIsDecidedByOneProvenRunUnlessAnotherDisagrees() {
        let q = TaskQuorum.adaptiveDefault
        #expect(q.adaptive && q.replicas == 2 && q.agree == 2)
        let proven = QuorumTally(votes: [Self.vote(1, "veteran", stdout: "x")], quorum: q, proven: ["veteran"])
        guard case .decided(let canonical, _, _) = proven.verdict else { Issue.record("\(proven.verdict)"); return }
        #expect(canonical.record.nodeID == "veteran")
        let newcomer = QuorumTally(votes: [Self.vote(1, "new", stdout: "x")], quorum: q, proven: ["veteran"])
        guard case .open = newcomer.verdict else { Issue.record("\(newcomer.verdict)"); return }
        #expect(newcomer.runsWanted == 2)
        let contested = QuorumTally(votes: [Self.vote(1, "veteran", stdout: "x"), Self.vote(2, "new", stdout: "y")], quorum: q, proven: ["veteran"])
        guard case .open = contested.verdict else { Issue.record("a disagreeing vote takes the proven run's word away: \(contested.verdict)"); return }
        // A task that is not adaptive ignores who is proven.
        let plain = QuorumTally(votes: [Self.vote(1, "veteran", stdout: "x")], quorum: Self.quorum(2, 2), proven: ["veteran"])
        guard case .open = plain.verdict else { Issue.record("\(plain.verdict)"); return }
    }

    @Test func theReputationTableIsReadWithItsLimitsAndRefusedWhenWrong() throws {
        let policy = try TrustPolicy.parse("[reputation]\nmin_consecutive_valid = 5\nmax_error_rate = 0.1\nmax_outvoted = 3\nadaptive_consecutive_valid = 8\n", source: "p")
        #expect(policy.reputation.minConsecutiveValid == 5 && policy.reputation.maxErrorRate == 0.1
                && policy.reputation.maxOutvoted == 3 && policy.reputation.adaptiveConsecutiveValid == 8)
        #expect(try TrustPolicy.parse("", source: "p").reputation == ReputationPolicy())
        for text in ["[reputation]\nmax_error_rate = 2\n", "[reputation]\nmin_consecutive_valid = -1\n", "[reputation]\nmax_outvoted = 0\n",
                     "[reputation]\nthreshold = 3\n", "reputation = 3\n"] {
            #expect(throws: TrustFileError.self, "\(text)") { _ = try TrustPolicy.parse(text, source: "p") }
        }
        var node = NodeReputation.Node(nodeID: "n")
        node.consecutiveValid = 4
        #expect(policy.reputation.probation(node) != nil)
        node.consecutiveValid = 5
        #expect(policy.reputation.probation(node) == nil && policy.reputation.barred(node) == nil)
        node.outvoted = 3
        #expect(policy.reputation.barred(node)?.contains("outvoted 3 times") == true)
        #expect(!policy.reputation.provenForAdaptive(node), "an outvoted node is not proven")
    }
}
