import Foundation
import Testing
import TestSupport

/// A dashboard built from a grid that holds what any repository writer or task
/// can put there (docs/THREATS.md T26): markup and script in queue file
/// names, task output, progress lines, submitters, node and result records and
/// the audit log; control and bidi characters; 10 MB of output. Everything
/// shows as text — escaped in HTML and SVG alike — the site stays within its
/// stated bound, and in Chromium no script runs: the title is the page's own,
/// no alert opens, the DOM holds no script, image or event handler, and the
/// browser logs no error (a Content-Security-Policy refusal would be one).
@Suite(.system, .serialized) struct GridDashboardHostileCLITests {
    /// Each would set the title, open an alert or load something if it ran.
    static let markup = [
        #"<script>document.title="pwned"</script>"#,
        #""><img src=x onerror=alert(1)>"#,
        #"'><svg onload=alert(2)>"#,
        #"</pre></details></section><script>alert(3)</script>"#,
    ]

    /// `--out` replaces a directory whole, so a mistyped one must never cost
    /// anyone their files: each refusal is one line with the fix, the directory
    /// is as it was, and nothing is left beside it.
    @Test func aDirectoryDgridDidNotWriteOrAGridWithoutMainIsRefusedWithTheFix() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        let scratch = try TempDir.make(prefix: "dgrid-dash-refused").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        func entries(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

        // A grid nobody ran dgrid init on: no site at all.
        let bare = try home.dgrid("dashboard", "--repo", url, "--out", scratch + "/site")
        #expect(bare.status == 1 && bare.stderr.contains("run `dgrid init --repo \(url)` first"), "\(bare.stderr)")
        #expect(entries(scratch).isEmpty, "\(entries(scratch))")

        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let theirs = scratch + "/theirs"
        try FileManager.default.createDirectory(atPath: theirs, withIntermediateDirectories: true)
        try Data("keep me\n".utf8).write(to: URL(fileURLWithPath: theirs + "/notes.txt"))
        #expect(symlink(theirs, scratch + "/link") == 0)
        let cases: [(out: String, says: String)] = [
            (theirs, "holds files dgrid did not write (no .dgrid-dashboard in it): give a new or empty directory"),
            (scratch + "/link", "is a symlink: give a new directory, or one dgrid dashboard wrote before"),
            (theirs + "/notes.txt", "is not a directory"),
            (scratch + "/missing/site", "no such directory; create it first"),
        ]
        for (out, says) in cases {
            let refused = try home.dgrid("dashboard", "--repo", url, "--out", out)
            #expect(refused.status == 1 && refused.stderr.contains(says), "\(out): \(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").count == 1 && refused.stdout.isEmpty, "one line: \(refused.stderr)")
        }
        let notes = try String(contentsOfFile: theirs + "/notes.txt", encoding: .utf8)
        #expect(entries(theirs) == ["notes.txt"] && notes == "keep me\n")
        #expect(entries(scratch) == ["link", "theirs"], "no staging tree left: \(entries(scratch))")

        // A site it wrote is replaced; an empty directory is taken.
        try FileManager.default.createDirectory(atPath: scratch + "/empty", withIntermediateDirectories: true)
        for out in [scratch + "/empty", scratch + "/empty"] {
            let built = try home.dgrid("dashboard", "--repo", url, "--out", out)
            #expect(built.status == 0, "\(built.stderr)")
        }
        #expect(entries(scratch + "/empty") == [".dgrid-dashboard", "dashboard.json", "index.html"])
    }

    @Test func hostileGridContentIsShownInertWithinTheBound() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let scratch = try TempDir.make(prefix: "dgrid-dash-hostile").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let tasks = scratch + "/tasks"
        try FileManager.default.createDirectory(atPath: tasks, withIntermediateDirectories: true)

        // Output: markup and terminal controls around 10 MB, and on stderr.
        let lines = Self.markup.map { "'" + $0.replacingOccurrences(of: "'", with: #"'\''"#) + "'" }.joined(separator: " ")
        try GridFixture.taskFile(tasks, "loud", "printf '%s\\n' \(lines); printf '\\033[31mred\\a\\r\\n'; "
                                 + "head -c 10485760 /dev/zero | tr '\\000' A; echo; printf '%s\\n' \(lines)",
                                 timeout: 60, extra: #","priority":"critical""#)
        try GridFixture.taskFile(tasks, "grumpy", "printf '%s\\n' \(lines) >&2; printf 'bidi \\342\\200\\256 ctl \\001\\033]0;t\\007\\n' >&2; exit 7",
                                 extra: #","priority":"critical""#)
        // Running: its progress line and its submitter are the task's own words.
        try GridFixture.taskFile(tasks, "evil_run", "echo '::progress 10 <img src=x onerror=alert(4)>'; sleep 120", timeout: 150,
                                 extra: #","priority":"high","submitter":"<script>alert(5)</script>""#)
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try GridFaultCLITests.launch(["worker", "--repo", url, "--node-id", "hostile_node", "--slots", "1"],
                                                  home: home, log: scratch + "/worker.log", environment: ["DGRID_HEARTBEAT_SECONDS": "1"])
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() } }
        // One slot, critical first: once evil_run reports progress, loud and grumpy have published their results.
        let running = try GridFaultCLITests.waitUntil(90) {
            ((try GridFixture.status(home, url)["running"] as? [[String: Any]])?.first?["progress"] as? String)?.contains("alert(4)") == true
        }
        #expect(running, "\((try? String(contentsOfFile: scratch + "/worker.log", encoding: .utf8)) ?? "")")
        #expect(try home.dgrid("fold", "--repo", url).status == 0)
        let folded = try GridFixture.status(home, url)
        #expect(folded["completed"] as? Int == 1 && folded["failed"] as? Int == 1, "\(folded)")

        // What a writer pushes by hand: queue files with markup and controls in their names,
        // a node record, a folded record of 3 MB, a dependency pair with 128-character ids.
        let hand = scratch + "/hand"
        try FileManager.default.createDirectory(atPath: hand, withIntermediateDirectories: true)
        func file(_ name: String, _ text: String) throws -> String {
            let path = hand + "/" + name
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        let junk = try file("junk", "{}")
        let node = try file("node", #"{"node_id":"evil_node","status":"<script>alert(6)</script>","health":"unhealthy","#
                            + #""reason":"\"><img src=x onerror=alert(7)>\u001b[31m","last_heartbeat":"<svg onload=alert(8)>","slots":2}"#)
        let forgedTask = try file("forged", #"{"task_id":"forged","script":"true","timeout_seconds":5}"#)
        let bulk = String(repeating: #"<script>alert(9)</script>\u0007\u001b[2J"#, count: 3 << 20 / 40)
        let forgedRecord = try file("forged.log", #"{"task_id":"forged","node_id":"n1","exit_code":1,"status":"failed","#
                                    + #""stdout":"\#(bulk)","stderr":"\u202ereversed \"><img src=x onerror=alert(10)>","#
                                    + #""finished_at":"\"><script>alert(11)</script>","stdout_bytes":3145728}"#)
        let long = String(repeating: "x", count: 127)
        let waiting = try file("waiting", #"{"task_id":"a\#(long)","script":"true","timeout_seconds":5,"depends_on":["b\#(long)"]}"#)
        let first = try file("first", #"{"task_id":"b\#(long)","script":"true","timeout_seconds":5,"priority":"low"}"#)
        try GridFixture.push(repo, [
            (junk, "tasks/queue/<script>document.title=1;alert(12)</script>.json"),
            (junk, #"tasks/queue/"><img src=x onerror=alert(13)>.json"#),
            (junk, "tasks/queue/ctl\u{1b}[2J\u{07}\u{202E}.json"),
            (node, "nodes/evil_node.json"),
            (forgedTask, "tasks/failed/n1-forged.json"), (forgedRecord, "tasks/failed/n1-forged.json.log"),
            (waiting, "tasks/queue/normal/a\(long).json"), (first, "tasks/queue/low/b\(long).json"),
        ])
        // This host's audit log, as a worker writing grid text into it would leave it.
        let audit = home.path + "/audit.log"
        let event = #"{"event":"signature_refused","time":"\#(ISO8601DateFormatter().string(from: Date()))","task_id":"<script>alert(14)</script>","#
            + #""node_id":"\"><img src=x onerror=alert(15)>","principals":["<b onmouseover=alert(16)>eve</b>"],"#
            + #""reason":"bad \u001b[2J\u0007 sig </td></tr></table><script>alert(17)</script>"}"# + "\n"
        let handle = try #require(FileHandle(forWritingAtPath: audit), "the worker made \(audit)")
        handle.seekToEndOfFile()
        handle.write(Data(event.utf8))
        try handle.close()

        let site = scratch + "/site"
        let built = try home.dgrid("dashboard", "--repo", url, "--out", site)
        #expect(built.status == 0, "\(built.stderr)")
        let numbers = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: site + "/dashboard.json"))) as? [String: Any] ?? [:]
        let bound = numbers["page_bound"] as? Int ?? 0
        var total = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: site) {
            total += (try FileManager.default.attributesOfItem(atPath: site + "/" + name)[.size] as? Int) ?? 0
        }
        print("hostile dashboard: \(total) bytes in all, index.html \(numbers["page_bytes"] ?? "?") of a \(bound)-byte bound")
        #expect(bound > 0 && total <= bound, "\(total) > \(bound)")
        #expect(total < 512 << 10, "13 MB of output and records show as excerpts: \(total) bytes")
        #expect(numbers["unplaceable"] as? Int == 3 && numbers["failed"] as? Int == 2, "\(numbers)")

        let page = try String(contentsOfFile: site + "/index.html", encoding: .utf8)
        for raw in ["<script", "<img", "<svg onload", "<b onmouseover", "\u{1b}", "\u{07}", "\u{202E}", "\u{01}"] {
            #expect(!page.contains(raw), "\(raw.debugDescription) reached index.html")
        }
        for escaped in ["&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;", "&quot;&gt;&lt;img src=x onerror=alert(13)&gt;.json",
                        "ctl\\u{1b}[2J\\u{7}\\u{202e}.json", "&lt;img src=x onerror=alert(4)&gt;", "&lt;script&gt;alert(5)&lt;/script&gt;"] {
            #expect(page.contains(escaped), "\(escaped) shown as text")
        }

        let server = try DashboardBrowser.Server.start(site, log: scratch + "/http.log")
        defer { server.stop() }
        let output = try DashboardBrowser.outputDirectory("hostileGridContentIsShownInert")
        let seen = try DashboardBrowser.look(at: server.url, screenshots: output + "/hostile")
        #expect((seen["title"] as? String)?.hasPrefix("dgrid dashboard: g-") == true, "no script set the title: \(seen["title"] ?? "")")
        #expect(seen["alert"] is NSNull || seen["alert"] == nil, "an alert opened: \(seen["alert"] ?? "")")
        let active = seen["active"] as? [String: Int] ?? [:]
        #expect(!active.isEmpty && active.values.allSatisfy { $0 == 0 }, "nothing that runs or loads in the DOM: \(active)")
        #expect(DashboardBrowser.errors(seen).isEmpty, "console errors: \(seen["console"] ?? [])")
        #expect(seen["overflow"] as? Int == 0, "long hostile text wraps: \(seen["overflow"] ?? "?") px too wide")
        let text = seen["text"] as? String ?? ""
        for shown in [#"<script>document.title="pwned"</script>"#, "onerror=alert(7)", "<script>alert(14)</script>", "\\u{1b}[31m"] {
            #expect(text.contains(shown), "\(shown) visible as text")
        }
    }
}
