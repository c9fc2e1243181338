import Testing
@testable import Runner
import TestSupport

private func graph(_ edges: [String: [String]], modes: [String: DependencyMode] = [:]) -> TaskGraph {
    TaskGraph(nodes: edges.mapValues { _ in TaskGraph.Node(dependsOn: [], mode: .default) }.merging(
        edges.map { ($0.key, TaskGraph.Node(dependsOn: $0.value, mode: modes[$0.key] ?? .default)) }, uniquingKeysWith: { $1 }))
}

/// `table`, and every other task of the graph queued (pending), as main would show them.
private func standing(_ table: [String: TaskGraph.Standing], in g: TaskGraph? = nil) -> (String) -> TaskGraph.Standing {
    { table[$0] ?? (g?.nodes[$0] != nil ? .pending : .unknown) }
}

@Suite("Dependency graph: readiness, modes, cycles, skips", .unit)
struct TaskGraphTests {
    @Test func eachModeDecidesFromItsDependenciesStanding() {
        let g = graph(["all": ["a", "b"], "fin": ["a", "b"], "any": ["a", "b"]],
                      modes: ["fin": .allFinished, "any": .anySucceeded])
        let cases: [([String: TaskGraph.Standing], all: TaskGraph.Verdict, fin: TaskGraph.Verdict, any: TaskGraph.Verdict)] = [
            (["a": .pending, "b": .pending], .waiting, .waiting, .waiting),
            (["a": .finished(.completed), "b": .pending], .waiting, .waiting, .ready),
            (["a": .finished(.completed), "b": .finished(.completed)], .ready, .ready, .ready),
            (["a": .finished(.failed), "b": .pending], .skip(because: ["a"]), .waiting, .waiting),
            (["a": .finished(.failed), "b": .finished(.completed)], .skip(because: ["a"]), .ready, .ready),
            (["a": .finished(.rejected), "b": .finished(.skipped)], .skip(because: ["a"]), .ready, .skip(because: ["a", "b"])),
        ]
        for (table, all, fin, any) in cases {
            #expect(g.verdict(of: "all", standing: standing(table)) == all, "\(table)")
            #expect(g.verdict(of: "fin", standing: standing(table)) == fin, "\(table)")
            #expect(g.verdict(of: "any", standing: standing(table)) == any, "\(table)")
        }
    }

    @Test func aDependencyNotOnTheGridIsRefusedWithItsName() {
        let g = graph(["t": ["ghost"]])
        guard case .reject(let why) = g.verdict(of: "t", standing: standing([:])) else {
            Issue.record("not rejected")
            return
        }
        #expect(why.contains("ghost") && why.contains("not on this grid"))
    }

    @Test func aThreeCycleIsFoundAndWrittenAlongItsEdges() {
        let g = graph(["a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": []])
        #expect(g.cycles["a"] == "a → b → c → a")
        #expect(g.cycles["b"] == "a → b → c → a" && g.cycles["c"] == "a → b → c → a")
        #expect(g.cycles["d"] == nil && g.cycles["e"] == nil)
        #expect(g.verdict(of: "b", standing: standing([:])) == .reject("dependency cycle: a → b → c → a"))
    }

    @Test func aCycleInsideALargerComponentIsTheShortestThroughItsSmallestId() {
        // a → b → a, and b → c → d → b: one component; the printed cycle is a real one.
        let g = graph(["a": ["b"], "b": ["c", "a"], "c": ["d"], "d": ["b"]])
        #expect(Set(["a", "b", "c", "d"]).allSatisfy { g.cycles[$0] == "a → b → a" })
    }

    @Test func aLongChainNeitherOverflowsNorCountsAsACycle() {
        var edges: [String: [String]] = [:]
        for i in 1..<20_000 { edges["t\(i)"] = ["t\(i - 1)"] }
        let g = graph(edges)
        #expect(g.cycles.isEmpty)
        let verdicts = g.finalVerdicts(standing: standing(["t0": .finished(.failed)], in: g))
        #expect(verdicts.count == 19_999)
        #expect(verdicts.first?.id == "t1" && verdicts.last?.id == "t19999")
    }

    @Test func aFailureSkipsDependentsTransitivelyInOnePassInDependencyOrder() {
        // build → test → package; docs → package (any); report waits for everything to finish.
        let g = graph(["test": ["build"], "package": ["test", "docs"], "publish": ["package"], "report": ["build", "publish"]],
                      modes: ["report": .allFinished])
        let verdicts = g.finalVerdicts(standing: standing(["build": .pending, "docs": .finished(.completed)], in: g),
                                       finishing: ["build": .failed])
        #expect(verdicts.map(\.id) == ["test", "package", "publish"])
        #expect(verdicts[0].verdict == .skip(because: ["build"]))
        #expect(verdicts[1].verdict == .skip(because: ["test"]))
        // report (all_finished) now has every dependency finished: it runs, not skipped.
        #expect(g.verdict(of: "report", standing: { id in
            ["build": .finished(.failed), "publish": .finished(.skipped)][id] ?? .pending
        }) == .ready)
    }

    @Test func nothingIsDecidedWhileDependenciesArePending() {
        let g = graph(["b": ["a"], "c": ["b"]])
        #expect(g.finalVerdicts(standing: standing(["a": .pending], in: g)).isEmpty)
        #expect(g.finalVerdicts(standing: standing(["a": .finished(.completed)], in: g)).isEmpty)
    }
}
