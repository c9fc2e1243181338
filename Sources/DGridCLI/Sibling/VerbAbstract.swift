/// The one-line descriptions of the verbs another binary runs (SiblingBinary):
/// one copy, read both by the commands themselves (Sources/dgrid-grid,
/// Sources/dgrid-registry) and by `dgrid`'s entries for them (SiblingVerbs),
/// so `dgrid --help` and `dgrid VERB --help` cannot tell two stories.
package enum VerbAbstract {
    package static let gridInit =
        "Give an empty repository the grid layout on main (tasks/queue, in_progress, completed, failed, rejected, nodes)."
    package static let gridSubmit = "Validate task files and queue them (all or nothing)."
    package static let gridWorker = "Take tasks from the grid and run each in a sandbox."
    package static let gridStatus = "Count the grid's tasks by state."
    package static let gridResult = "Show a task's result: its stdout and stderr, or the whole record with --json."
    package static let gridFold = "Fold claims and results into main (workers do this on their own)."
    package static let gridSign = "Sign task files with an SSH key (appends to FILE.json.sig)."
    package static let gridVerify = "Check task files' signatures as this host's workers would."
    package static let gridAudit = "Show this host's audit log: trust decisions and security events."
    package static let gridDag = "Show the dependency graph of the grid's tasks, with each task's state."
    package static let gridArchive = "Move folded records older than an age into compressed day bundles under archive/."
    package static let gridCompact = "Start main's history anew with the same files, keeping the old history aside."
    package static let gridResults = "List finished tasks newest first, a page at a time, filtered by time and status."
    package static let gridQuota = "Show each principal's use of the grid against this host's quotas."
    package static let gridDoctor = "Check whether this host can run dgrid workers: each check PASS, WARN or FAIL with the fix."
    package static let gridMetrics = "Show grid-wide figures and how many workers the queue needs; --watch sends changes as signed webhooks."
    package static let gridDashboard = "Write a static dashboard of the grid (HTML and JSON) into a directory, swapped in whole."
    package static let gridNode = "Make or show this host's node key, which signs every claim, heartbeat and result it publishes."
    package static let gridReputation = "Show each node's results, failures, timeouts and lost leases, from the grid's signed history."
    package static let imagePull = "Pull an allowlisted image from a registry, by digest."
}
