import Foundation
import Testing
@testable import Runner
import TestSupport

/// The dashboard's page (docs/ARCHITECTURE.md §12, docs/THREATS.md T26): grid
/// text escaped for HTML and SVG, and a page no larger than `pageBound`
/// however hostile and large the grid.
@Suite("Dashboard page: escaping and bounds", .unit)
struct DashboardPageTests {
    @Test(arguments: [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("\"><img src=x onerror=alert(1)>", "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
        ("it's & done", "it&#39;s &amp; done"),
        ("bell\u{07}esc\u{1b}[31m", "bell\\u{7}esc\\u{1b}[31m"),
        ("left\u{202E}thgir", "left\\u{202e}thgir"),
        ("zero\u{200B}width", "zero\\u{200b}width"),
        ("line\nbreak\r", "line\\u{a}break\\u{d}"),
        ("back\\slash", "back\\\\slash"),
    ])
    func aValueIsInertAsTextAndInAQuotedAttribute(input: String, shown: String) {
        #expect(HTMLText.shown(input, limit: 200) == shown)
    }

    @Test func aValueIsCutAtItsLimit() {
        #expect(HTMLText.shown(String(repeating: "a", count: 500), limit: 80) == String(repeating: "a", count: 80) + "…")
        let widest = HTMLText.shown(String(repeating: "\u{10FFFF}", count: 100), limit: 80)
        #expect(widest.utf8.count == 80 * HTMLText.maxBytesPerScalar + "…".utf8.count)
        #expect(HTMLText.shown(String(repeating: "&", count: 80), limit: 80).utf8.count <= 80 * HTMLText.maxBytesPerScalar + 3)
    }

    @Test func anExcerptKeepsItsLineBreaksAndEscapesTheRest() {
        #expect(HTMLText.lines("a <b>\r\n\u{1b}[2Jc\n") == "a &lt;b&gt;\\u{d}\n\\u{1b}[2Jc\n")
    }

    @Test func anExcerptIsTheEndOfTheStreamOnAWholeCharacter() {
        let (tail, cut) = DashboardReader.tail("ab" + String(repeating: "é", count: 10), bytes: 5)
        #expect(cut && tail == "éé", "5 bytes from the end start inside an é: the next whole one")
        #expect(DashboardReader.tail("short", bytes: 10) == ("short", false))
    }

    @Test func thePageOfAHostileGridAtEveryLimitStaysUnderItsBound() throws {
        let limits = DashboardLimits.standard
        let page = DashboardPage.html(HostileDashboard.make(limits: limits))
        let bytes = page.utf8.count
        #expect(bytes <= limits.pageBound, "\(bytes) > \(limits.pageBound)")
        #expect(bytes > limits.pageBound / 4, "the bound is not loose by more than 4×: \(bytes) of \(limits.pageBound)")
        #expect(limits.pageBound < 6 << 20, "the default page stays under 6 MiB: \(limits.pageBound)")
        for raw in ["<script", "<img", "<iframe", "javascript:", "\u{1b}", "\u{202E}", "\u{10FFFF}"] {
            #expect(!page.contains(raw), "\(raw.debugDescription) reached the page")
        }
        // Only dgrid's own tags: every '<' opens one of them.
        let tags = Set(page.components(separatedBy: "<").dropFirst().map { String($0.prefix { $0.isLetter || $0.isNumber || $0 == "/" || $0 == "!" }) })
        let ours: Set<String> = ["!doctype", "html", "/html", "head", "/head", "meta", "title", "/title", "style", "/style", "body", "/body",
                                 "header", "/header", "h1", "/h1", "h2", "/h2", "h3", "/h3", "p", "/p", "code", "/code", "main", "/main",
                                 "section", "/section", "dl", "/dl", "div", "/div", "dt", "/dt", "dd", "/dd", "span", "/span", "table", "/table",
                                 "thead", "/thead", "tbody", "/tbody", "tr", "/tr", "th", "/th", "td", "/td", "details", "/details",
                                 "summary", "/summary", "b", "/b", "pre", "/pre", "ul", "/ul", "li", "/li", "svg", "/svg", "defs", "/defs",
                                 "marker", "/marker", "path", "g", "/g", "rect", "text", "/text", "footer", "/footer"]
        #expect(tags.subtracting(ours).isEmpty, "\(tags.subtracting(ours))")
    }

    @Test func eachNodeShowsItsGitCircuitAndAReputationColumnOnlyWhenARecordHasOne() throws {
        func node(_ id: String, circuit: String?, reputation: Double?) -> Dashboard.NodeRow {
            Dashboard.NodeRow(summary: GridStatus.NodeSummary(nodeID: id, status: "active", slots: 2, lastHeartbeat: ISOTime.string(Date()),
                                                              health: "healthy", gitCircuit: circuit, reputation: reputation), silentSeconds: 1)
        }
        let plain = DashboardSections.nodes(HostileDashboard.make(limits: .standard, rows: 1, nodes: [
            node("n_closed", circuit: "closed", reputation: nil), node("n_open", circuit: "open", reputation: nil), node("n_old", circuit: nil, reputation: nil),
        ]))
        #expect(plain.contains(#"data-label="Git circuit"><span class="ok">closed</span>"#))
        #expect(plain.contains(#"data-label="Git circuit"><span class="bad">open</span>"#))
        #expect(plain.contains(#"data-label="Git circuit">—</td>"#), "an older worker's record names no circuit")
        #expect(!plain.contains("Reputation"), "no record carries one: no column")
        let rated = DashboardSections.nodes(HostileDashboard.make(limits: .standard, rows: 1, nodes: [
            node("n_rated", circuit: "closed", reputation: 0.875), node("n_unrated", circuit: "closed", reputation: nil),
        ]))
        #expect(rated.contains(#"<th class="num">Reputation</th>"#) && rated.contains(#"data-label="Reputation">0.875</td>"#))
        #expect(rated.contains(#"data-label="Reputation">—</td>"#) && rated.contains("not checked by dgrid"))
        // The record's field: a finite number of at least 0, else none.
        func reputation(_ value: String) -> Double? {
            NodeRecord.parse(Array(#"{"node_id":"n1","reputation":\#(value)}"#.utf8))?.reputation
        }
        #expect(reputation("0.875") == 0.875 && reputation("12") == 12)
        #expect(reputation("-1") == nil && reputation(#""high""#) == nil && reputation("1e999") == nil && reputation("null") == nil)
    }

    @Test func theStylesheetIsAllowedByItsHashAndNothingElseIs() {
        let page = DashboardPage.html(HostileDashboard.make(limits: .standard, rows: 1))
        #expect(page.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src \(DashboardStyle.cspSource);"))
        #expect(DashboardStyle.cspSource.hasPrefix("'sha256-") && DashboardStyle.cspSource.count == 8 + 44 + 1)
        #expect(page.contains("<style>" + DashboardStyle.css + "</style>"), "the hash is of exactly what is in the page")
        #expect(!page.contains(" style=\""), "no inline style attribute (the policy would refuse it)")
    }
}

/// A dashboard with every list at its cap and every untrusted value at its
/// widest: each scalar one that `HTMLText` writes as ten bytes.
enum HostileDashboard {
    /// `nodes`: these rows instead of hostile ones.
    static func make(limits: DashboardLimits, rows: Int? = nil, nodes given: [Dashboard.NodeRow]? = nil) -> Dashboard {
        let wide = String(repeating: "\u{10FFFF}", count: 1_000)
        let id = String(repeating: "a", count: 128)
        let now = Date()
        func count(_ cap: Int) -> Int { min(cap, rows ?? cap) }
        var numbers = DashboardNumbers()
        numbers.queued = 1_000_000
        numbers.gridID = "g-0123456789abcdef0123456789abcdef"
        let queueHead = (0..<count(limits.queuedRows)).map { _ in
            QueueCandidate(location: QueueLocation(path: "tasks/queue/\(id).json", taskID: id, priority: .high, shard: nil), priority: .high, createdAt: wide)
        }
        let unplaced = (0..<count(limits.unplacedRows)).map { _ in UnplacedFile(path: wide, blob: nil, reason: wide) }
        let running = (0..<count(limits.runningRows)).map { i in
            var claim = GridStatus.Running(taskID: wide, nodeID: wide, attempt: 3, leaseUntil: wide, expired: i % 2 == 0, state: "held", previousAttempts: 2)
            claim.principal = wide
            claim.progress = wide
            return claim
        }
        let output = Dashboard.OutputExcerpt(stdout: String(repeating: "\u{10FFFF}", count: limits.excerptBytes / 4) + String(repeating: "<", count: limits.excerptBytes % 4),
                                             stderr: String(repeating: "\u{1b}", count: limits.excerptBytes), stdoutBytes: 10 << 20, stderrBytes: 10 << 20,
                                             stdoutTruncated: true, stderrTruncated: true, stdoutCut: true, stderrCut: true, durationMs: 5, timedOut: true, oomKilled: true)
        let finished = (0..<count(limits.finishedRows)).map { _ in
            Dashboard.FinishedTask(item: ResultListing.Item(taskID: wide, status: "failed", exitCode: 1, finishedAt: wide, nodeID: wide, place: "main"),
                                   output: output, note: nil)
        }
        let nodes = given ?? (0..<count(limits.nodeRows)).map { _ in
            Dashboard.NodeRow(summary: GridStatus.NodeSummary(nodeID: wide, status: wide, slots: 4, lastHeartbeat: wide, health: wide, reason: wide,
                                                              gitCircuit: "half_open", reputation: -1.7976931348623157e308),
                              silentSeconds: nil)
        }
        var quota = GridQuota.Report()
        quota.principals = (0..<count(limits.principalRows)).map { _ in
            var usage = GridQuota.Usage(principal: wide)
            usage.waiting = wide
            return usage
        }
        let audit = (0..<count(limits.auditRows)).map { _ in
            AuditEvent(kind: .signatureRefused, nodeID: wide, taskID: wide, principals: [wide, wide, wide, wide, wide], reason: wide)
        }
        // A graph with more than graphNodes boxes: pairs that do not fold, ids at their longest.
        var tasks: [GridDAG.Task] = []
        for i in 0..<(count(limits.graphNodes) * 2) {
            let a = String(format: "%03d", i) + String(repeating: "x", count: 125)
            tasks.append(GridDAG.Task(id: a, state: .failed, dependsOn: i > 0 ? [String(format: "%03d", i - 1) + String(repeating: "x", count: 125)] : [],
                                      dependencyMode: nil, reason: wide))
        }
        return Dashboard(numbers: numbers, limits: limits, generatedAt: now, queueHead: queueHead, unplaced: unplaced, running: running,
                         completions: finished, failures: finished, nodes: nodes, quotas: .report(quota), audit: .events(audit),
                         graph: DependencyGraphLayout(tasks: tasks, limits: limits), staleAfterSeconds: 90)
    }
}
