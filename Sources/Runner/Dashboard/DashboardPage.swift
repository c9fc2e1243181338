import Foundation

/// `index.html` of the dashboard (docs/ARCHITECTURE.md §12): one static page,
/// no script, the stylesheet inline and pinned by the page's
/// Content-Security-Policy, so it can be published as it is on any static
/// host. Every value read from the grid or the audit log goes through
/// `HTMLText` (docs/THREATS.md T26); everything else on the page is dgrid's own.
enum DashboardPage {
    static func html(_ dashboard: Dashboard) -> String {
        let numbers = dashboard.numbers
        let grid = numbers.gridID.map { HTMLText.shown($0, limit: 40) } ?? "without an id (run dgrid init)"
        var out = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src \(DashboardStyle.cspSource); base-uri 'none'; form-action 'none'">
            <meta name="referrer" content="no-referrer">
            <meta name="generator" content="dgrid dashboard">
            <title>dgrid dashboard: \(grid)</title>
            <style>\(DashboardStyle.css)</style>
            </head>
            <body>
            <header><h1>dgrid dashboard</h1>
            <p class="meta">Grid <code>\(grid)</code> · main <code>\(numbers.main.map { HTMLText.shown(String($0.prefix(12)), limit: 12) } ?? "none")</code> · built \(ISOTime.string(dashboard.generatedAt)) from the grid's ledger: a snapshot, rebuilt by <code>dgrid dashboard</code>.</p>
            </header>
            <main>

            """
        out += summary(numbers)
        out += DashboardSections.queue(dashboard)
        out += DashboardSections.running(dashboard)
        out += DashboardSections.finished(dashboard)
        out += DashboardSections.nodes(dashboard)
        out += DashboardSections.quotas(dashboard)
        out += DashboardSections.audit(dashboard)
        out += graph(dashboard)
        out += "</main>\n" + footer(dashboard.limits) + "</body>\n</html>\n"
        return out
    }

    /// The headline numbers; each carries `data-metric`, the name `dashboard.json` gives it.
    private static func summary(_ n: DashboardNumbers) -> String {
        func card(_ title: String, _ metric: String, _ value: Int, _ tone: String? = nil) -> String {
            "<div class=\"card\"><dt>\(title)</dt><dd\(tone.map { " class=\"\($0)\"" } ?? "") data-metric=\"\(metric)\">\(value)</dd></div>"
        }
        var out = "<section id=\"summary\" aria-label=\"Summary\"><dl class=\"cards\">"
        out += card("Queued", "queued", n.queued)
        out += card("Running", "running", n.running)
        out += card("Completed", "completed", n.completed, "ok")
        out += card("Failed", "failed", n.failed, n.failed > 0 ? "bad" : nil)
        out += card("Rejected", "rejected", n.rejected, n.rejected > 0 ? "bad" : nil)
        out += card("Nodes", "nodes", n.nodes)
        out += "</dl>\n<p class=\"note\">"
        var notes = ["<span data-metric=\"claimable\">\(n.claimable)</span> claimable now",
                     "<span data-metric=\"in_progress\">\(n.inProgress)</span> in tasks/in_progress/ as of the last fold",
                     "<span data-metric=\"unfolded_results\">\(n.unfoldedResults)</span> results not folded yet"]
        if n.leaseLapsed > 0 { notes.append("<span class=\"warn\" data-metric=\"lease_lapsed\">\(n.leaseLapsed)</span> claims past their lease") }
        if n.released > 0 { notes.append("<span data-metric=\"released\">\(n.released)</span> claims given back") }
        if n.archived > 0 { notes.append("<span data-metric=\"archived\">\(n.archived)</span> of the finished archived") }
        if n.nodesUnhealthy > 0 { notes.append("<span class=\"bad\" data-metric=\"nodes_unhealthy\">\(n.nodesUnhealthy)</span> nodes unhealthy") }
        if n.nodesCircuitOpen > 0 { notes.append("<span class=\"bad\" data-metric=\"nodes_git_circuit_open\">\(n.nodesCircuitOpen)</span> nodes with their Git circuit open") }
        if n.nodesStale > 0 { notes.append("<span class=\"warn\" data-metric=\"nodes_stale\">\(n.nodesStale)</span> nodes silent") }
        notes.append("<span data-metric=\"slots\">\(n.slots)</span> slots")
        return out + notes.joined(separator: " · ") + ".</p></section>\n"
    }

    private static func graph(_ dashboard: Dashboard) -> String {
        let layout = dashboard.graph, limits = dashboard.limits
        var out = "<section id=\"graph\"><h2>Dependency graph</h2>\n"
        guard layout.taskCount > 0 else { return out + "<p class=\"note\">No task on this grid names depends_on.</p></section>\n" }
        out += "<ul class=\"legend\">"
        for state in DependencyGraphLayout.stateOrder {
            let count = dashboard.numbers.graph.byState[state.rawValue] ?? 0
            guard count > 0 else { continue }
            out += "<li><span class=\"swatch s-\(state.rawValue)\"></span>\(state.rawValue) <span data-metric=\"graph_\(state.rawValue)\">\(count)</span></li>"
        }
        out += "</ul>\n<p class=\"note\"><span data-metric=\"graph_tasks\">\(layout.taskCount)</span> tasks, an arrow from each dependency to its dependent."
        if layout.summaryBoxes > 0 {
            out += " <span data-metric=\"graph_summarized\">\(layout.summarizedTasks)</span> of them are drawn as \(layout.summaryBoxes) summary boxes (dashed)"
                + ": more than \(limits.graphFanOut) tasks with the same dependencies and dependents, or hanging off one task, share a box"
                + " (the first \(max(1, limits.graphFanOut - 1)) keep theirs), and past \(limits.graphNodes) boxes the rest share one; a box's bar shows its tasks' states."
        }
        if layout.edgeCount > layout.edges.count {
            out += " \(layout.edgeCount - layout.edges.count) of \(layout.edgeCount) arrows are not drawn (at most \(limits.graphEdges))."
        }
        out += " <code>dgrid dag</code> lists every task.</p>\n<div class=\"scroll\">"
        out += DependencyGraphSVG.svg(layout, limits: limits)
        return out + "</div></section>\n"
    }

    private static func footer(_ limits: DashboardLimits) -> String {
        "<footer class=\"note\">Lists are cut at \(limits.queuedRows) queued, \(limits.runningRows) running, \(limits.finishedRows) completions and \(limits.finishedRows) failures "
            + "(the last \(limits.excerptBytes) bytes of each stream), \(limits.nodeRows) nodes, \(limits.principalRows) principals, \(limits.auditRows) audit events; "
            + "every value read from the grid is escaped and cut at \(limits.idScalars) characters (reasons \(limits.reasonScalars)). "
            + "<code>dgrid status --limit 0</code>, <code>dgrid results</code>, <code>dgrid dag</code>, <code>dgrid quota</code> and <code>dgrid audit</code> show everything.</footer>\n"
    }

    /// "12 s", "5 min", "3 h", "2 d": how long, for a reader.
    static func duration(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s < 90 { return "\(Int(s)) s" }
        if s < 90 * 60 { return "\(Int(s / 60)) min" }
        if s < 36 * 3_600 { return "\(Int(s / 3_600)) h" }
        return "\(Int(s / 86_400)) d"
    }

    /// An untrusted time as written, with how long ago (or ahead) it is from `now` when it parses.
    static func time(_ text: String, now: Date, limits: DashboardLimits) -> String {
        let shown = HTMLText.shown(text, limit: limits.idScalars)
        guard let date = ISOTime.parse(text) else { return shown }
        let delta = now.timeIntervalSince(date)
        return shown + " <span class=\"note\">(" + (delta >= 0 ? duration(delta) + " ago" : "in " + duration(-delta)) + ")</span>"
    }
}
