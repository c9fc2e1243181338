import Foundation

/// The dashboard's lists (docs/ARCHITECTURE.md §12), each cut to its
/// `DashboardLimits` and saying how many more there are. Every grid value goes
/// through `HTMLText` (docs/THREATS.md T26).
enum DashboardSections {
    static func queue(_ dashboard: Dashboard) -> String {
        let n = dashboard.numbers, limits = dashboard.limits
        var out = "<section id=\"queue\"><h2>Queue</h2>\n"
        var byPriority = HTMLTable([.init("Priority"), .init("Queued", numeric: true)], narrow: true)
        for priority in TaskPriority.allCases {
            let count = n.queuedByPriority[priority.rawValue] ?? 0
            byPriority.add([priority.rawValue, "<span data-metric=\"queued_\(priority.rawValue)\">\(count)</span>"])
        }
        out += byPriority.html
        if dashboard.queueHead.isEmpty {
            out += "<p class=\"note\">No queued task can be claimed now" + (n.queued > 0 ? ": the queued ones wait for their dependencies." : ".") + "</p>\n"
        } else {
            out += "<h3>Next to be claimed</h3>\n"
            var next = HTMLTable([.init("#", numeric: true), .init("Task"), .init("Priority"), .init("Submitted")])
            for (position, candidate) in dashboard.queueHead.enumerated() {
                next.add(["\(position + 1)", id(candidate.taskID, limits), candidate.priority.rawValue,
                          candidate.createdAt.isEmpty ? "—" : DashboardPage.time(candidate.createdAt, now: dashboard.generatedAt, limits: limits)])
            }
            out += next.html
            out += more(n.claimable - dashboard.queueHead.count, "claimable", "dgrid status")
        }
        if !dashboard.unplaced.isEmpty || n.unplaceable > 0 {
            out += "<h3>Files no worker can read</h3>\n<p class=\"note\">Under tasks/queue/, waiting for the next fold to set them aside"
                + " in tasks/rejected/unplaced/ with the reason (\(n.setAside) set aside so far).</p>\n"
            var table = HTMLTable([.init("Path"), .init("Why")])
            for file in dashboard.unplaced {
                table.add([id(file.path, limits, scalars: limits.reasonScalars), HTMLText.shown(file.reason, limit: limits.reasonScalars)])
            }
            out += table.html + more(n.unplaceable - dashboard.unplaced.count, "such files", "dgrid status")
        }
        return out + "</section>\n"
    }

    static func running(_ dashboard: Dashboard) -> String {
        let n = dashboard.numbers, limits = dashboard.limits
        var out = "<section id=\"running\"><h2>Running</h2>\n"
        guard !dashboard.running.isEmpty else { return out + "<p class=\"note\">No task is under a claim.</p></section>\n" }
        var table = HTMLTable([.init("Task"), .init("Node"), .init("For"), .init("Attempt", numeric: true), .init("Lease"), .init("Progress")])
        for task in dashboard.running {
            let lease: String
            if task.state == "released" {
                lease = "<span class=\"warn\">given back</span>: runnable by any worker"
            } else {
                lease = DashboardPage.time(task.leaseUntil, now: dashboard.generatedAt, limits: limits) + (task.expired ? " <span class=\"warn\">lapsed</span>" : "")
            }
            let principal = task.principal.map { HTMLText.shown($0, limit: limits.idScalars) } ?? "unknown"
            let progress = (task.progress.map { HTMLText.shown($0, limit: limits.idScalars) } ?? "—") + (task.checkpointed ? " <span class=\"note\">(checkpointed)</span>" : "")
            table.add([id(task.taskID, limits), id(task.nodeID, limits), principal + (task.principalVerified ? "" : " <span class=\"note\">(unverified)</span>"),
                       "\(task.attempt)" + (task.previousAttempts > 0 ? " <span class=\"note\">(\(task.previousAttempts) earlier)</span>" : ""),
                       lease, progress])
        }
        out += table.html
        return out + more(n.running + n.leaseLapsed + n.released - dashboard.running.count, "claims", "dgrid status --limit 0") + "</section>\n"
    }

    static func finished(_ dashboard: Dashboard) -> String {
        let n = dashboard.numbers
        var out = "<section id=\"finished\"><h2>Recent results</h2>\n"
        // The latest failures open: their output is what a reader came for.
        out += "<h3>Failures</h3>\n" + finishedList(dashboard.failures, dashboard: dashboard, empty: "No task has failed.", open: 5)
        out += more(n.failed + n.rejected - dashboard.failures.count, "failed or rejected", "dgrid results --status failed")
        out += "<h3>Completions</h3>\n" + finishedList(dashboard.completions, dashboard: dashboard, empty: "No task has completed yet.")
        out += more(n.completed - dashboard.completions.count, "completed", "dgrid results --status completed")
        return out + "</section>\n"
    }

    private static func finishedList(_ tasks: [Dashboard.FinishedTask], dashboard: Dashboard, empty: String, open: Int = 0) -> String {
        guard !tasks.isEmpty else { return "<p class=\"note\">\(empty)</p>\n" }
        let limits = dashboard.limits
        var out = ""
        for (position, task) in tasks.enumerated() {
            let item = task.item
            let status = ResultStatus(rawValue: item.status)
            let tone = status == .completed ? "ok" : "bad"
            out += "<details\(position < open ? " open" : "")><summary><span class=\"id\">\(HTMLText.shown(item.taskID, limit: limits.idScalars))</span> · <b class=\"\(tone)\">"
                + "\(status?.rawValue ?? HTMLText.shown(item.status, limit: 16))</b> exit \(item.exitCode) on <span class=\"id\">\(HTMLText.shown(item.nodeID, limit: limits.idScalars))</span> · "
                + (item.finishedAt.isEmpty ? "finish time unknown" : DashboardPage.time(item.finishedAt, now: dashboard.generatedAt, limits: limits))
                + (item.place == "unfolded" ? " · not folded yet" : "") + "</summary>\n"
            if let output = task.output {
                var facts = ["ran \(DashboardPage.duration(Double(output.durationMs) / 1000))"]
                if output.timedOut { facts.append("<span class=\"bad\">timed out</span>") }
                if output.oomKilled { facts.append("<span class=\"bad\">killed for memory</span>") }
                out += "<p class=\"note\">" + facts.joined(separator: " · ") + "</p>"
                out += stream("stdout", output.stdout, bytes: output.stdoutBytes, truncated: output.stdoutTruncated, cut: output.stdoutCut, taskID: item.taskID, limits: limits)
                out += stream("stderr", output.stderr, bytes: output.stderrBytes, truncated: output.stderrTruncated, cut: output.stderrCut, taskID: item.taskID, limits: limits)
            } else if let note = task.note {
                out += "<p class=\"note\">\(note)</p>"
            }
            out += "</details>\n"
        }
        return out
    }

    private static func stream(_ name: String, _ text: String, bytes: UInt64, truncated: Bool, cut: Bool, taskID: String, limits: DashboardLimits) -> String {
        guard !text.isEmpty else { return bytes == 0 ? "<p class=\"note\">\(name): empty</p>" : "<p class=\"note\">\(name): \(bytes) bytes, none kept in the record</p>" }
        var caption = "\(name)"
        if cut || truncated {
            caption += ": the last \(text.utf8.count) of \(bytes) bytes"
            if truncated { caption += " (whole: <code>dgrid result \(HTMLText.shown(taskID, limit: limits.idScalars)) --download DIR</code>)" }
        }
        return "<p class=\"note\">\(caption)</p><pre>\(HTMLText.lines(text))</pre>\n"
    }

    static func nodes(_ dashboard: Dashboard) -> String {
        let n = dashboard.numbers, limits = dashboard.limits
        var out = "<section id=\"nodes\"><h2>Nodes</h2>\n"
        guard !dashboard.nodes.isEmpty else { return out + "<p class=\"note\">No node has sent a heartbeat.</p></section>\n" }
        // Reputation only when a record carries one: dgrid's workers do not write it.
        let reputation = dashboard.nodes.contains { $0.summary.reputation != nil }
        var columns: [HTMLTable.Column] = [.init("Node"), .init("Status"), .init("Health"), .init("Git circuit"), .init("Slots", numeric: true)]
        if reputation { columns.append(.init("Reputation", numeric: true)) }
        var table = HTMLTable(columns + [.init("Last heartbeat")])
        for row in dashboard.nodes {
            let node = row.summary
            let health = node.health == "healthy" ? "<span class=\"ok\">healthy</span>"
                : "<span class=\"bad\">\(HTMLText.shown(node.health, limit: 16))</span>" + (node.reason.map { ": " + HTMLText.shown($0, limit: limits.reasonScalars) } ?? "")
            let silent = row.silentSeconds.map { $0 > dashboard.staleAfterSeconds } ?? true
            var cells = [id(node.nodeID, limits), HTMLText.shown(node.status, limit: limits.idScalars), health, circuit(node.gitCircuit), "\(node.slots)"]
            if reputation { cells.append(node.reputation.map { String(format: "%.3g", $0) } ?? "—") }
            table.add(cells + [DashboardPage.time(node.lastHeartbeat, now: dashboard.generatedAt, limits: limits)
                                 + (silent ? " <span class=\"warn\">silent</span>" : "")])
        }
        out += table.html
        out += "<p class=\"note\">Silent: no heartbeat for \(DashboardPage.duration(dashboard.staleAfterSeconds)) (three of this host's heartbeat intervals)."
            + " Git circuit: open while the node's Git server keeps failing (it stops claiming and probes), half_open while it probes."
            + (reputation ? " Reputation: as each node's record states it, not checked by dgrid." : "") + "</p>\n"
        return out + more(n.nodes - dashboard.nodes.count, "nodes", "dgrid status --limit 0") + "</section>\n"
    }

    static func quotas(_ dashboard: Dashboard) -> String {
        let limits = dashboard.limits
        var out = "<section id=\"quotas\"><h2>Quotas in use</h2>\n"
        switch dashboard.quotas {
        case .unavailable(let why):
            return out + "<p class=\"note\">Not shown: this host's trust files could not be read (\(HTMLText.shown(why, limit: limits.reasonScalars))).</p></section>\n"
        case .report(let report):
            func of(_ value: Int, _ limit: Int?) -> String { "\(value)" + (limit.map { " / \($0)" } ?? "") }
            out += "<p class=\"note\">As this host's trust/policy.toml (and the grid's fleet policy beneath it) counts them. Grid: running "
                + of(report.running, report.maxConcurrent) + ", queued " + of(report.queued, report.maxQueue) + ".</p>\n"
            guard !report.principals.isEmpty else { return out + "<p class=\"note\">No principal: no signed task on the grid and none named in the policy.</p></section>\n" }
            var table = HTMLTable([.init("Principal"), .init("Running", numeric: true), .init("Queued", numeric: true), .init("Started, last hour", numeric: true), .init("Next task")])
            for usage in report.principals.prefix(limits.principalRows) {
                table.add([id(usage.principal, limits), of(usage.running, usage.maxConcurrentTasks), of(usage.queued, usage.maxQueuedTasks),
                           of(usage.startedLastHour, usage.maxTasksPerHour),
                           usage.waiting.map { "<span class=\"warn\">waits</span>: " + HTMLText.shown($0, limit: limits.reasonScalars) } ?? "runs"])
            }
            return out + table.html + more(report.principals.count - limits.principalRows, "principals", "dgrid quota") + "</section>\n"
        }
    }

    static func audit(_ dashboard: Dashboard) -> String {
        let limits = dashboard.limits
        var out = "<section id=\"audit\"><h2>Recent audit events</h2>\n"
        guard case .events(let events) = dashboard.audit else {
            return out + "<p class=\"note\">Left out (--no-audit).</p></section>\n"
        }
        out += "<p class=\"note\">This host's audit log: the trust decisions and security events of the workers that run here, newest first.</p>\n"
        guard !events.isEmpty else { return out + "<p class=\"note\">No event.</p></section>\n" }
        var table = HTMLTable([.init("Time"), .init("Event"), .init("Task"), .init("Node"), .init("By"), .init("Why")])
        for event in events.prefix(limits.auditRows) {
            let tone = [.signatureAccepted, .policyApplied, .unsignedAllowed].contains(event.kind) ? "" : " class=\"warn\""
            table.add([DashboardPage.time(ISOTime.string(event.time), now: dashboard.generatedAt, limits: limits),
                       "<span\(tone)>\(event.kind.rawValue)</span>",
                       event.taskID.map { id($0, limits) } ?? "—", event.nodeID.map { id($0, limits) } ?? "—",
                       event.principals.isEmpty ? "—" : event.principals.prefix(4).map { HTMLText.shown($0, limit: limits.idScalars) }.joined(separator: ", "),
                       event.reason.map { HTMLText.shown($0, limit: limits.reasonScalars) } ?? ""])
        }
        return out + table.html + "<p class=\"note\"><code>dgrid audit</code> shows them all.</p></section>\n"
    }

    /// A node's Git circuit, a `GitCircuitBreaker.State` word (the record's parse keeps no other), or "—" from an older worker.
    private static func circuit(_ word: String?) -> String {
        guard let word, let state = GitCircuitBreaker.State(rawValue: word) else { return "—" }
        return state == .closed ? "<span class=\"ok\">closed</span>" : "<span class=\"bad\">\(state.rawValue)</span>"
    }

    /// An id (task, node, path) in monospace, escaped and cut.
    private static func id(_ text: String, _ limits: DashboardLimits, scalars: Int? = nil) -> String {
        "<span class=\"id\">\(HTMLText.shown(text, limit: scalars ?? limits.idScalars))</span>"
    }

    /// "… and N more X (COMMAND lists them)", or nothing.
    private static func more(_ count: Int, _ what: String, _ command: String) -> String {
        count > 0 ? "<p class=\"note\">… and \(count) more \(what): <code>\(command)</code> lists them.</p>\n" : ""
    }
}
