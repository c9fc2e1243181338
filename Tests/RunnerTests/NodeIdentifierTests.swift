import Foundation
import Sandbox
import Testing
@testable import Runner
import TestSupport

/// Node ids hold no '-' (issue 9): the ledger names records `<node>-<task>.json`
/// and task ids may hold '-', so only then does every name read one way.
@Suite(.unit) struct NodeIdentifierTests {
    @Test(arguments: ["w1", "w1_job", "node.eu_2", "W1", "7", "node_vm", String(repeating: "n", count: 64)])
    func plainNodeIDsAreAccepted(id: String) {
        #expect(NodeIdentifier.problem(id) == nil)
        #expect(LedgerLayout.isValidNodeID(id))
    }

    /// A '-' makes `<id>-7.json` read two ways: the message shows both readings and the id to use.
    @Test(arguments: [
        ("w1-job", "task 7 on node w1-job and as task job-7 on node w1", "\"w1_job\""),
        ("node-a", "task 7 on node node-a and as task a-7 on node node", "\"node_a\""),
        ("a-b-c", "task 7 on node a-b-c and as task b-c-7 on node a", "\"a_b_c\""),
        ("w1-", "task 7 on node w1- and as task -7 on node w1", "\"w1_\""),
    ])
    func nodeIDsWithADashAreRefusedWithBothReadings(id: String, readings: String, suggestion: String) throws {
        let problem = try #require(NodeIdentifier.problem(id))
        #expect(problem.hasPrefix("invalid node id \"\(id)\": a node id may not contain '-'"), "\(problem)")
        #expect(problem.contains(readings), "\(problem)")
        #expect(problem.hasSuffix("use \(suggestion) instead"), "\(problem)")
        #expect(!LedgerLayout.isValidNodeID(id))
    }

    /// Names that are no path component or ref name at all: refused with the rule, the id shown escaped.
    @Test(arguments: [
        ("", "\"\""), ("-w1", "\"-w1\""), (".w1", "\".w1\""), ("w1.", "\"w1.\""), ("a..b", "\"a..b\""),
        ("w1.lock", "\"w1.lock\""), ("a/b", "\"a/b\""), ("../x", "\"../x\""), ("w1\n", "\"w1\\n\""),
        ("w 1", "\"w 1\""), ("nœud", "\"nœud\""), ("w1\u{0}", "\"w1\\0\""), ("w1+x", "\"w1+x\""),
        (String(repeating: "n", count: 65), "\"" + String(repeating: "n", count: 65) + "\""),
    ])
    func malformedNodeIDsAreRefusedWithTheRule(id: String, shown: String) throws {
        let problem = try #require(NodeIdentifier.problem(id))
        #expect(problem == "invalid node id \(shown): use 1-64 characters of A-Z a-z 0-9 . _ (no '-'), not starting with '.', "
                    + "without '..', not ending in '.' or '.lock'")
        #expect(!problem.contains("\n") && !problem.contains("\u{0}"))
    }

    /// Builders and reader are inverses, and two pairs never share a name.
    @Test func everyNameReadsOneWay() throws {
        let nodes = ["w1", "w1_job", "n.1", "job"]
        let tasks = ["7", "job-7", "w1-7", "a-b-c", "x.y", "-"].filter(TaskParser.isValidTaskID)
        var seen: [String: String] = [:]
        for node in nodes {
            for task in tasks {
                for path in [LedgerLayout.inProgressPath(node: node, taskID: task), LedgerLayout.completedPath(node: node, taskID: task),
                             LedgerLayout.failedPath(node: node, taskID: task)] {
                    let name = String(path.split(separator: "/").last!.dropLast(".json".count))
                    let read = try #require(LedgerLayout.nodeAndTask(inName: name))
                    #expect(read.node == node && read.taskID == task, "\(name)")
                    if let other = seen[path] { Issue.record("\(path) is both \(other) and \(task) on \(node)") }
                    seen[path] = "\(task) on \(node)"
                }
            }
        }
        let read = try #require(LedgerLayout.nodeAndTask(inName: "w1-job-7"))
        #expect(read.node == "w1" && read.taskID == "job-7")
    }

    @Test(arguments: ["w1", "-7", "w1-", "w1-.x", "w1--7", ".w1-7", "w1-7.lock", "w1-a..b", "", "-", "w 1-7", "w1-7/8"])
    func namesThatAreNoNodeTaskPairAreIgnored(name: String) {
        #expect(LedgerLayout.nodeAndTask(inName: name) == nil)
    }

    /// Records are read at the edge: one naming a node with '-' is no record (a claim
    /// then binds nothing, a result is dropped and its task runs again, a node record is ignored).
    @Test func recordsNamingANodeWithADashAreRefused() {
        #expect(ResultRecord.parse(ResultRecord(taskID: "7", nodeID: "w1-job", exitCode: 0).json()) == nil)
        #expect(ResultRecord.parse(ResultRecord(taskID: "7", nodeID: "w1_job", exitCode: 0).json()) != nil)
        let claim = ClaimRecord(taskID: "7", nodeID: "w1-job", attempt: 1, claimedAt: "", leaseUntil: "2026-11-29T10:00:00Z")
        #expect(ClaimRecord.parse(claim.json()) == nil)
        let node = NodeRecord(nodeID: "w1-job", nodeName: "h", cpuCount: 1, memoryGB: 1, diskGB: 0, lastHeartbeat: "", status: "active")
        #expect(NodeRecord.parse(node.json()) == nil)
        #expect(GridConnection.nodeRefs(["refs/dgrid/nodes/w1-job": GitOID(hex: String(repeating: "a", count: 40))!]).isEmpty)
    }

    /// A worker named w1-job never starts: refused before its mirror (or anything else) is created.
    @Test func aConnectionAsANodeWithADashIsRefusedBeforeTouchingAnything() throws {
        let directory = try LedgerFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let settings = GridSettings(repository: "file://" + directory + "/grid.git", nodeID: "w1-job",
                                    state: StateDirectory(path: directory + "/state"))
        do {
            _ = try GridConnection(settings: settings)
            Issue.record("a connection as w1-job was made")
        } catch {
            #expect("\(error)".hasPrefix("invalid node id \"w1-job\": a node id may not contain '-'"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/state/grids"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/grid.git"))
    }
}
